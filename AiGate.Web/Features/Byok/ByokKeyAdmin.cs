using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Providers;
using AiGate.Web.Features.Vault;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Byok;

/// <summary>
/// Changes to an account's own provider keys, from the Provider keys page: each one audited in the same transaction
/// (never with the secret: kind, label, base URL and last 4 only) and announced to every instance
/// (<see cref="ByokKeys.NoticePrefix"/>) when it commits. Every command is filtered by the owner.
/// </summary>
public sealed partial class ByokKeyAdmin(AppDbContext db, SecretVault vault, AuditLog audit, OutboundAddressGuard guard, ByokKeys keys,
    ProviderRegistry registry, IOptions<ByokOptions> options, TimeProvider clock)
{
    public const int MaxSecretLength = 4096;

    /// <summary>What an audit entry may show of a key.</summary>
    public sealed record KeyState(string Kind, string Label, string? BaseUrl, string Last4, bool FallbackToPlatform);

    /// <summary>The key's id, or what is wrong with the input (a sentence for the form; it never quotes the secret).</summary>
    public async Task<(Guid? Id, string? Error)> AddAsync(Guid userId, string kind, string? label, string? baseUrl, string secret, bool fallback,
        CancellationToken ct)
    {
        kind = kind.Trim().ToLowerInvariant();
        secret = secret.Trim();
        if (Array.IndexOf(ByokKinds.All, kind) < 0) return (null, "Pick a provider: OpenAI, Anthropic, Gemini or an OpenAI-compatible endpoint.");
        if (secret.Length is < 8 or > MaxSecretLength || secret.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            return (null, $"The key must be 8 to {MaxSecretLength} characters without spaces.");
        label = string.IsNullOrWhiteSpace(label) ? kind : label.Trim().ToLowerInvariant();
        if (!LabelRegex().IsMatch(label)) return (null, "The label must be 1 to 32 lower-case letters, digits or dashes (it is part of the model name byok/<label>/<model>).");
        string? url = null;
        if (kind == ByokKinds.Custom)
        {
            var (checkedUrl, error) = await guard.CheckUrlAsync(baseUrl, ct);
            if (error is not null) return (null, error);
            url = checkedUrl!.AbsoluteUri;
        }
        if (!vault.IsConfigured) return (null, "Provider keys cannot be stored on this server yet: its vault has no key-encryption key (Vault__Kek).");
        var existing = await db.Set<UserProviderKey>().AsNoTracking().Where(k => k.UserId == userId).Select(k => new { k.Kind, k.Label }).ToListAsync(ct);
        if (existing.Count >= options.Value.MaxKeysPerAccount) return (null, $"An account may store at most {options.Value.MaxKeysPerAccount} provider keys; delete one first.");
        if (kind != ByokKinds.Custom && existing.Any(k => k.Kind == kind)) return (null, $"You already have a {kind} key; delete it first to replace it.");
        if (existing.Any(k => k.Label == label)) return (null, $"You already have a key labelled \"{label}\"; pick another label.");

        var id = Guid.CreateVersion7();
        var sealedSecret = await vault.SealAsync(SecretVault.AccountOwner(userId), UserProviderKey.Purpose, id.ToString(), secret, ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var row = new UserProviderKey
        {
            Id = id, UserId = userId, Kind = kind, Label = label, BaseUrl = url, Secret = sealedSecret.Ciphertext, KeyVersion = sealedSecret.KeyVersion,
            Last4 = ProviderKey.LastFour(secret), FallbackToPlatform = fallback && kind != ByokKinds.Custom, CreatedAt = clock.GetUtcNow(),
        };
        audit.Add(new AuditChange("byok-key.add", Target(id), null, State(row)));
        db.Add(row);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: "23505" })
        {
            return (null, $"You already have a key labelled \"{label}\"; pick another label.");
        }
        await NotifyAsync(transaction, userId, ct);
        await transaction.CommitAsync(ct);
        return (id, null);
    }

    /// <summary>False when the account has no such key.</summary>
    public async Task<bool> DeleteAsync(Guid userId, Guid id, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var row = await db.Set<UserProviderKey>().SingleOrDefaultAsync(k => k.Id == id && k.UserId == userId, ct);
        if (row is null) return false;
        audit.Add(new AuditChange("byok-key.delete", Target(id), State(row), null));
        db.Remove(row);
        await db.SaveChangesAsync(ct);
        await NotifyAsync(transaction, userId, ct);
        await transaction.CommitAsync(ct);
        return true;
    }

    /// <summary>Turns "fall back to the platform's keys" on or off; false when the account has no such key.</summary>
    public async Task<bool> SetFallbackAsync(Guid userId, Guid id, bool fallback, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var row = await db.Set<UserProviderKey>().SingleOrDefaultAsync(k => k.Id == id && k.UserId == userId, ct);
        if (row is null) return false;
        var before = State(row);
        row.FallbackToPlatform = fallback && row.Kind != ByokKinds.Custom;
        audit.Add(new AuditChange("byok-key.fallback", Target(id), before, State(row)));
        await db.SaveChangesAsync(ct);
        await NotifyAsync(transaction, userId, ct);
        await transaction.CommitAsync(ct);
        return true;
    }

    /// <summary>
    /// A cheap authenticated call with the key (the provider's "list models"): null when the account has no such key, else
    /// a sentence for the page. The provider's own message is not shown (some quote the key they refused).
    /// </summary>
    public async Task<string?> TestAsync(Guid userId, Guid id, CancellationToken ct)
    {
        var account = await keys.ForAccountAsync(userId, ct);
        var key = FindKey(account, id);
        if (key is null) return null;
        var provider = key.Custom ?? PlatformProvider(key.Kind);
        using var request = provider.Adapter.CreateModelsRequest(provider, key.Secret);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        try
        {
            // Through the guarded pool for every kind: a custom URL is checked again on connect; the others are public hosts.
            using var response = await (key.Custom is null && provider.Http is { } platform ? platform : keys.Guarded).SendAsync(request, timeout.Token);
            var status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode) return $"OK: {provider.Name} accepted the key \"{key.Label}\" (HTTP {status}).";
            var body = await GatewayResponses.ReadBoundedAsync(response, 64 * 1024, timeout.Token) ?? [];
            if (UpstreamRouter.IsKeyRefusal(provider.Kind, response.StatusCode, body))
            {
                keys.Refused(key, status);
                return $"Refused: {provider.Name} answered HTTP {status}; the key \"{key.Label}\" is not valid there.";
            }
            return $"The provider answered HTTP {status}; the key may be fine, but the test could not tell.";
        }
        catch (HttpRequestException ex)
        {
            return $"Could not reach the provider: {ex.Message}";
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return "The provider did not answer within 15 seconds.";
        }
    }

    private static UserKey? FindKey(AccountKeys account, Guid id)
    {
        foreach (var key in account.All)
            if (key.Id == id) return key;
        return null;
    }

    /// <summary>Where a kind's key is tested: the configured provider a user's key of that kind goes to, else the service's public API.</summary>
    private Provider PlatformProvider(string kind)
    {
        var providerKind = kind switch { ByokKinds.Anthropic => ProviderKind.Anthropic, ByokKinds.Gemini => ProviderKind.Gemini, _ => ProviderKind.OpenAi };
        foreach (var provider in registry.ByName.Values)
            if (provider.Kind == providerKind && AccountKeys.AcceptsUserKeys(provider)) return provider;
        return new Provider
        {
            Name = kind, Kind = providerKind, ApiKey = null, Timeout = TimeSpan.FromSeconds(15), StreamIdleTimeout = TimeSpan.FromSeconds(15),
            BaseUrl = new Uri(providerKind switch
            {
                ProviderKind.Anthropic => "https://api.anthropic.com", ProviderKind.Gemini => "https://generativelanguage.googleapis.com",
                _ => "https://api.openai.com/v1",
            }),
            Adapter = providerKind switch { ProviderKind.Anthropic => AnthropicAdapter.Instance, ProviderKind.Gemini => GeminiAdapter.Instance, _ => OpenAiAdapter.Instance },
            Http = keys.Guarded, Breaker = ProviderRegistry.BuildBreaker(),
        };
    }

    private static string Target(Guid id) => $"byok-key:{id}";

    private static KeyState State(UserProviderKey row) => new(row.Kind, row.Label, row.BaseUrl, row.Last4, row.FallbackToPlatform);

    private async Task NotifyAsync(IDbContextTransaction transaction, Guid userId, CancellationToken ct)
    {
        keys.Forget(userId);
        await ByokKeys.PublishAsync((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)transaction.GetDbTransaction(), userId, ct);
    }

    [GeneratedRegex(CustomModels.LabelPattern)]
    private static partial Regex LabelRegex();
}
