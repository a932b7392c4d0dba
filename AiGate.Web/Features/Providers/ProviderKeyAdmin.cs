using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Vault;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// Changes to the platform's provider keys, from the admin page and the <c>add-provider-key</c> verb: each one
/// audited in the same transaction, and announced to every instance (<see cref="ProviderKeyRing.Notice"/>) when it
/// commits. The secret is sealed before it is stored and is never part of an audit entry, a log line or an answer.
/// </summary>
public sealed class ProviderKeyAdmin(AppDbContext db, SecretVault vault, AuditLog audit, ProviderRegistry registry, TimeProvider clock)
{
    public const int MaxSecretLength = 4096;

    /// <summary>What an audit entry or a page may show of a key.</summary>
    public sealed record KeyState(string Provider, string Label, string Last4, string Status);

    /// <summary>Null when the key was stored (its id in <paramref name="id"/>), else what is wrong with the input.</summary>
    public async Task<(Guid? Id, string? Error)> AddAsync(string provider, string? label, string secret, CancellationToken ct)
    {
        provider = provider.Trim();
        secret = secret.Trim();
        if (!registry.ByName.TryGetValue(provider, out var configured))
            return (null, $"No provider named \"{provider}\" is configured (Providers__{provider}__Kind).");
        if (configured.Kind == ProviderKind.Echo) return (null, "The echo provider takes no key.");
        if (secret.Length is < 8 or > MaxSecretLength || secret.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            return (null, $"The key must be 8 to {MaxSecretLength} characters without spaces.");
        label = string.IsNullOrWhiteSpace(label) ? $"added {clock.GetUtcNow():yyyy-MM-dd}" : label.Trim();
        if (label.Length > 100) return (null, "The label must be at most 100 characters.");
        if (!vault.IsConfigured) return (null, "The vault has no key-encryption key: set Vault__Kek (base64 of 32 random bytes) first.");

        var id = Guid.CreateVersion7();
        var sealedSecret = await vault.SealAsync(SecretVault.PlatformOwner, ProviderKeyRow.Purpose, id.ToString(), secret, ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var row = new ProviderKeyRow
        {
            Id = id, Provider = provider, Label = label, Secret = sealedSecret.Ciphertext, KeyVersion = sealedSecret.KeyVersion,
            Last4 = ProviderKey.LastFour(secret), Status = ProviderKeyStatus.Active, CreatedAt = clock.GetUtcNow(), CreatedBy = "",
        };
        var entry = audit.Add(new AuditChange("provider-key.add", $"provider-key:{id}", null, State(row)));
        row.CreatedBy = entry.Actor;
        db.Add(row);
        await db.SaveChangesAsync(ct);
        await NotifyAsync(transaction, ct);
        await transaction.CommitAsync(ct);
        return (id, null);
    }

    /// <summary>Retired: never used again, by any instance, within a second or so. Null, or why not.</summary>
    public Task<string?> RetireAsync(Guid id, CancellationToken ct) => ChangeStatusAsync(id, "provider-key.retire", ProviderKeyStatus.Retired,
        [ProviderKeyStatus.Active, ProviderKeyStatus.Disabled], ct);

    /// <summary>A disabled key back in use (after the provider's side was fixed). Null, or why not.</summary>
    public Task<string?> EnableAsync(Guid id, CancellationToken ct) => ChangeStatusAsync(id, "provider-key.enable", ProviderKeyStatus.Active,
        [ProviderKeyStatus.Disabled], ct);

    private async Task<string?> ChangeStatusAsync(Guid id, string action, string to, string[] from, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var row = await db.Set<ProviderKeyRow>().FromSqlInterpolated($"select * from provider_keys where id = {id} for update").SingleOrDefaultAsync(ct);
        if (row is null) return "No such key.";
        if (!from.Contains(row.Status)) return $"The key is {row.Status}.";
        var before = State(row);
        var now = clock.GetUtcNow();
        row.Status = to;
        if (to == ProviderKeyStatus.Retired) row.RetiredAt = now;
        if (to == ProviderKeyStatus.Active) row.DisabledAt = null;
        audit.Add(new AuditChange(action, $"provider-key:{id}", before, State(row)));
        await db.SaveChangesAsync(ct);
        await NotifyAsync(transaction, ct);
        await transaction.CommitAsync(ct);
        return null;
    }

    private static KeyState State(ProviderKeyRow row) => new(row.Provider, row.Label, row.Last4, row.Status);

    private Task NotifyAsync(IDbContextTransaction transaction, CancellationToken ct) =>
        CacheNotifications.PublishAsync((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)transaction.GetDbTransaction(),
            ProviderKeyRing.Notice, ct);
}
