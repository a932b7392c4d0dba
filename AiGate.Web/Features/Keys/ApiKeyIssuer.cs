using AiGate.Web.Infrastructure;
using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Keys;

/// <summary>What a new key may do; every field is optional.</summary>
public sealed record KeyLimits(
    DateTimeOffset? ExpiresAt = null, long? CreditLimitMicros = null, int? RequestsPerMinute = null,
    int? TokensPerMinute = null, IReadOnlyList<string>? AllowedModels = null);

/// <summary>
/// Issues, rotates, renames and revokes keys. Every change that can end a key's validity publishes
/// a cache notice in the same transaction, so all instances stop accepting it within moments.
/// Every method filters by owner: a user can only touch their own keys.
/// </summary>
public sealed class ApiKeyIssuer(AppDbContext db, ApiKeyHasher hasher, TimeProvider clock, IOptions<KeysOptions> options)
{
    /// <summary>Creates a key and returns its secret: the only time it exists outside the caller's hands.</summary>
    public async Task<(ApiKey Key, string Secret)> IssueAsync(Guid ownerId, string name, KeyLimits limits, CancellationToken ct)
    {
        var secret = ApiKeyFormat.Generate(options.Value.LiveKeys);
        var (prefix, last4) = ApiKeyFormat.Describe(secret);
        var key = new ApiKey
        {
            Id = Guid.CreateVersion7(),
            OwnerId = ownerId,
            Name = name.Trim(),
            KeyHash = hasher.Hash(secret),
            Prefix = prefix,
            Last4 = last4,
            CreatedAt = clock.GetUtcNow(),
            ExpiresAt = limits.ExpiresAt,
            CreditLimitMicros = limits.CreditLimitMicros,
            RequestsPerMinute = limits.RequestsPerMinute,
            TokensPerMinute = limits.TokensPerMinute,
            AllowedModels = [.. limits.AllowedModels ?? []],
        };
        db.Add(key);
        await db.SaveChangesAsync(ct);
        return (key, secret);
    }

    /// <summary>
    /// A new secret with the same settings; the old key keeps working for <paramref name="grace"/>
    /// (zero: it stops now), then is refused like any expired key. Null, with nothing changed, when the key is not
    /// the owner's or not in use (revoked, expired or already rotated).
    /// </summary>
    public async Task<(ApiKey Key, string Secret)?> RotateAsync(Guid ownerId, Guid keyId, TimeSpan grace, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var now = clock.GetUtcNow();
        // Only a key in use can be rotated: an expired or already rotated key would hand its end date to the new one.
        var old = await db.Set<ApiKey>().AsNoTracking().FirstOrDefaultAsync(k => k.Id == keyId && k.OwnerId == ownerId && k.RevokedAt == null
            && k.ReplacedById == null && (k.ExpiresAt == null || k.ExpiresAt > now), ct);
        if (old is null) return null;
        var (key, secret) = await IssueAsync(ownerId, old.Name, new KeyLimits(old.ExpiresAt, old.CreditLimitMicros,
            old.RequestsPerMinute, old.TokensPerMinute, old.AllowedModels), ct);
        var endsAt = now + grace;
        // The same condition again, as the update's own: two rotations at once both read the key, but only the first
        // update matches (the second waits for its row lock, then sees replaced_by set) and the loser's new key is rolled back.
        var changed = await db.Set<ApiKey>().Where(k => k.Id == keyId && k.OwnerId == ownerId && k.RevokedAt == null
                && k.ReplacedById == null && (k.ExpiresAt == null || k.ExpiresAt > now))
            .ExecuteUpdateAsync(s => s
                .SetProperty(k => k.ExpiresAt, k => k.ExpiresAt != null && k.ExpiresAt < endsAt ? k.ExpiresAt : endsAt)
                .SetProperty(k => k.ReplacedById, key.Id), ct);
        if (changed != 1) return null;
        await NotifyAsync($"key:{keyId}", ct);
        await transaction.CommitAsync(ct);
        return (key, secret);
    }

    public async Task<bool> RevokeAsync(Guid ownerId, Guid keyId, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var now = clock.GetUtcNow();
        var changed = await db.Set<ApiKey>().Where(k => k.Id == keyId && k.OwnerId == ownerId && k.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, now), ct);
        if (changed == 0) return false;
        await NotifyAsync($"key:{keyId}", ct);
        await transaction.CommitAsync(ct);
        return true;
    }

    public async Task<bool> RenameAsync(Guid ownerId, Guid keyId, string name, CancellationToken ct) =>
        await db.Set<ApiKey>().Where(k => k.Id == keyId && k.OwnerId == ownerId)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.Name, name.Trim()), ct) == 1;

    private Task NotifyAsync(string payload, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"select pg_notify({CacheNotifications.Channel}, {payload})", ct);
}
