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
/// The keys a caller may touch: every key of <see cref="OrgId"/>, or only those <see cref="CreatorId"/> created (a
/// member without <c>ManageAllKeys</c>). A bare organization id converts to the first.
/// </summary>
public readonly record struct KeyScope(Guid OrgId, Guid? CreatorId = null)
{
    public static implicit operator KeyScope(Guid orgId) => new(orgId);
}

/// <summary>
/// Issues, rotates, renames and revokes keys. Every change that can end a key's validity publishes
/// a cache notice in the same transaction, so all instances stop accepting it within moments.
/// Every method filters by <see cref="KeyScope"/>: the organization, and the creator for a plain member.
/// </summary>
public sealed class ApiKeyIssuer(AppDbContext db, ApiKeyHasher hasher, TimeProvider clock, IOptions<KeysOptions> options)
{
    /// <summary>A key of a personal organization, created by its owner (the CLI and tests).</summary>
    public Task<(ApiKey Key, string Secret)> IssueAsync(Guid ownerId, string name, KeyLimits limits, CancellationToken ct) =>
        IssueAsync(ownerId, ownerId, name, limits, ct);

    /// <summary>Creates a key of <paramref name="orgId"/> for <paramref name="createdBy"/> and returns its secret: the only time it exists outside the caller's hands.</summary>
    public async Task<(ApiKey Key, string Secret)> IssueAsync(Guid orgId, Guid createdBy, string name, KeyLimits limits, CancellationToken ct)
    {
        var secret = ApiKeyFormat.Generate(options.Value.LiveKeys);
        var (prefix, last4) = ApiKeyFormat.Describe(secret);
        var key = new ApiKey
        {
            Id = Guid.CreateVersion7(),
            OwnerId = orgId,
            CreatedBy = createdBy,
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
    public async Task<(ApiKey Key, string Secret)?> RotateAsync(KeyScope scope, Guid keyId, TimeSpan grace, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var now = clock.GetUtcNow();
        // Only a key in use can be rotated: an expired or already rotated key would hand its end date to the new one.
        var old = await InScope(scope).AsNoTracking().FirstOrDefaultAsync(k => k.Id == keyId && k.RevokedAt == null
            && k.ReplacedById == null && (k.ExpiresAt == null || k.ExpiresAt > now), ct);
        if (old is null) return null;
        // The new key keeps the old one's creator: rotating is not taking someone's key over.
        var (key, secret) = await IssueAsync(old.OwnerId, old.CreatedBy, old.Name, new KeyLimits(old.ExpiresAt, old.CreditLimitMicros,
            old.RequestsPerMinute, old.TokensPerMinute, old.AllowedModels), ct);
        var endsAt = now + grace;
        // The same condition again, as the update's own: two rotations at once both read the key, but only the first
        // update matches (the second waits for its row lock, then sees replaced_by set) and the loser's new key is rolled back.
        var changed = await InScope(scope).Where(k => k.Id == keyId && k.RevokedAt == null
                && k.ReplacedById == null && (k.ExpiresAt == null || k.ExpiresAt > now))
            .ExecuteUpdateAsync(s => s
                .SetProperty(k => k.ExpiresAt, k => k.ExpiresAt != null && k.ExpiresAt < endsAt ? k.ExpiresAt : endsAt)
                .SetProperty(k => k.ReplacedById, key.Id), ct);
        if (changed != 1) return null;
        await NotifyAsync($"key:{keyId}", ct);
        await transaction.CommitAsync(ct);
        return (key, secret);
    }

    public async Task<bool> RevokeAsync(KeyScope scope, Guid keyId, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var now = clock.GetUtcNow();
        var changed = await InScope(scope).Where(k => k.Id == keyId && k.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, now), ct);
        if (changed == 0) return false;
        await NotifyAsync($"key:{keyId}", ct);
        await transaction.CommitAsync(ct);
        return true;
    }

    public async Task<bool> RenameAsync(KeyScope scope, Guid keyId, string name, CancellationToken ct) =>
        await InScope(scope).Where(k => k.Id == keyId)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.Name, name.Trim()), ct) == 1;

    /// <summary>
    /// Revokes every key <paramref name="memberId"/> created in <paramref name="orgId"/> (they left or were removed), in the
    /// caller's transaction when there is one; each instance drops them on the notice. Returns how many.
    /// </summary>
    public async Task<int> RevokeMemberKeysAsync(Guid orgId, Guid memberId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var ids = await db.Set<ApiKey>().Where(k => k.OwnerId == orgId && k.CreatedBy == memberId && k.RevokedAt == null)
            .Select(k => k.Id).ToListAsync(ct);
        if (ids.Count == 0) return 0;
        await db.Set<ApiKey>().Where(k => ids.Contains(k.Id)).ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, now), ct);
        foreach (var id in ids) await NotifyAsync($"key:{id}", ct);
        return ids.Count;
    }

    /// <summary>The keys <paramref name="scope"/> reaches.</summary>
    public IQueryable<ApiKey> InScope(KeyScope scope) =>
        scope.CreatorId is { } creator
            ? db.Set<ApiKey>().Where(k => k.OwnerId == scope.OrgId && k.CreatedBy == creator)
            : db.Set<ApiKey>().Where(k => k.OwnerId == scope.OrgId);

    private Task NotifyAsync(string payload, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"select pg_notify({CacheNotifications.Channel}, {payload})", ct);
}
