using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using AiGate.Web.Features.Vault;
using AiGate.Web.Infrastructure;
using Npgsql;

namespace AiGate.Web.Features.Byok;

/// <summary>
/// Where a gateway endpoint meets BYOK: it resolves <c>byok/{label}/{model}</c> names to the account's endpoint, and
/// gives each call its <see cref="ByokCall"/> (null when the account has no key that applies), from memory.
/// </summary>
public sealed partial class ByokGateway(ByokKeys keys, CustomModels customModels, ProviderRegistry registry, ILogger<ByokGateway> logger)
{
    /// <summary>Null when the call goes on, else it was refused (the answer is written).</summary>
    public readonly record struct Lookup(bool Refused, ByokCall? Call);

    /// <summary>The model of a <c>byok/{label}/{model}</c> name, or null with the 404 written (no such endpoint on this account).</summary>
    public async Task<ResolvedModel?> ResolveCustomAsync(HttpContext context, KeyIdentity key, string name)
    {
        var parsed = CustomModels.Parse(name);
        var account = parsed is null ? null : await AccountKeysAsync(context, key);
        if (parsed is { } p && account is not null && account.Custom.TryGetValue(p.Label, out var endpoint))
            return customModels.Resolve(name, endpoint, p.Model);
        if (!context.Response.HasStarted)
            await ApiErrors.WriteAsync(context, StatusCodes.Status404NotFound,
                $"The model `{(name.Length > CustomModels.MaxIdLength ? name[..CustomModels.MaxIdLength] + "…" : name)}` does not exist: custom endpoints " +
                $"are called as byok/<label>/<model> (at most {CustomModels.MaxIdLength} characters), with the label of one of your endpoints on the " +
                "Provider keys page.", "invalid_request_error", "model_not_found", "model");
        return null;
    }

    /// <summary>The call's BYOK state (null: platform keys only), or <see cref="Lookup.Refused"/> with a 503 written.</summary>
    public async ValueTask<Lookup> ForCallAsync(HttpContext context, KeyIdentity key, ResolvedModel model)
    {
        var account = await AccountKeysAsync(context, key);
        return account is null ? new Lookup(true, null) : new Lookup(false, customModels.For(account, model, registry));
    }

    /// <summary>
    /// What the reservation covers: the fee's worst case when every route will use a user key that never falls back,
    /// else the model's own (the platform's keys may serve the call).
    /// </summary>
    public ModelPricing ReservePricing(ByokCall? byok, ResolvedModel model) =>
        byok is not null && byok.AlwaysUserKey(model, registry) ? byok.FeePricing : model.Pricing!.Value;

    private async ValueTask<AccountKeys?> AccountKeysAsync(HttpContext context, KeyIdentity key)
    {
        try
        {
            return await keys.ForAccountAsync(key.OwnerId, context.RequestAborted);
        }
        catch (Exception ex) when (ex is DatabaseUnavailableException or NpgsqlException or VaultException)
        {
            LogKeysUnavailable(ex, key.OwnerId);
            await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                "Your own provider keys cannot be read right now, so the call was not sent. Please retry shortly.", "server_error",
                "byok_unavailable", retryAfter: TimeSpan.FromSeconds(2));
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The provider keys of account {UserId} could not be read")]
    private partial void LogKeysUnavailable(Exception ex, Guid userId);
}
