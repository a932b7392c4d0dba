using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Byok;

/// <summary>
/// The BYOK side of one gateway call: the account's keys, the custom endpoint it names (if any), and the user keys the
/// provider refused during this call whose owner allowed a fall back to the platform's keys. The router asks it which
/// key each attempt uses (<see cref="KeyFor"/>); the endpoint asks it what the call is billed (<see cref="Pricing"/>).
/// </summary>
public sealed class ByokCall(AccountKeys keys, UserKey? custom, ModelPricing feePricing)
{
    private List<Guid>? _fellBack;

    public AccountKeys Keys => keys;
    /// <summary>The custom endpoint of a <c>byok/{label}/{model}</c> call.</summary>
    public UserKey? Custom => custom;
    /// <summary>What a call served with the user's key costs: the model's price times the BYOK fee, or the custom endpoint fee.</summary>
    public ModelPricing FeePricing => feePricing;

    /// <summary>The user's key for this attempt at <paramref name="provider"/>, or null: the platform's keys serve it.</summary>
    public UserKey? KeyFor(Provider provider)
    {
        if (custom is not null) return ReferenceEquals(provider, custom.Custom) ? custom : null;
        var key = keys.For(provider);
        return key is null || _fellBack?.Contains(key.Id) == true ? null : key;
    }

    /// <summary>The provider refused <paramref name="key"/> and its owner allows the platform's keys: later attempts use those.</summary>
    public void FallBack(UserKey key) => (_fellBack ??= []).Add(key.Id);

    /// <summary>
    /// True when every route of <paramref name="model"/> goes upstream with a user key that never falls back: only then
    /// can the reservation be the fee's worst case; otherwise the platform's keys may serve the call at the full price.
    /// </summary>
    public bool AlwaysUserKey(ResolvedModel model, ProviderRegistry registry)
    {
        if (custom is not null) return true;
        var routes = model.Routes;
        for (var i = 0; i < routes.Count; i++)   // indexed: no enumerator boxed per call (issue 16)
        {
            if (!registry.ByName.TryGetValue(routes[i].Provider, out var provider)) continue;
            if (keys.For(provider) is not { FallbackToPlatform: false }) return false;
        }
        return model.Routes.Count > 0;
    }

    /// <summary>Whether any route of the model would carry a user key.</summary>
    public static bool Applies(AccountKeys keys, ResolvedModel model, ProviderRegistry registry)
    {
        var routes = model.Routes;
        for (var i = 0; i < routes.Count; i++)
            if (registry.ByName.TryGetValue(routes[i].Provider, out var provider) && keys.For(provider) is not null) return true;
        return false;
    }
}

/// <summary>
/// Custom OpenAI-compatible endpoints of users, called as <c>byok/{label}/{upstream model}</c>: the label names the
/// account's endpoint (lower-case letters, digits and dashes, so the first slash after it ends it), the rest is sent
/// upstream as the model, slashes and all. They are not in the catalogue: each call builds its model here, priced at
/// <see cref="BillingOptions.ByokCustomFeePerMTokMicros"/>.
/// </summary>
public sealed class CustomModels(IOptions<BillingOptions> billing)
{
    public const string Prefix = "byok/";
    public const string LabelPattern = "^[a-z0-9][a-z0-9-]{0,31}$";
    /// <summary>A custom endpoint's limits are unknown: the reservation uses the default output cap unless the client sets one.</summary>
    private const int UnknownLimit = 1_000_000;

    /// <summary>The longest model id a usage row holds (<c>usage_events.model_id</c>): a longer name could not be billed.</summary>
    public const int MaxIdLength = 128;

    public static bool IsCustom(string model) => model.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The label and upstream model of <c>byok/{label}/{model}</c>, or null when the name is not of that shape or too long.</summary>
    public static (string Label, string Model)? Parse(string model)
    {
        if (!IsCustom(model) || model.Length > MaxIdLength) return null;
        var rest = model.AsSpan(Prefix.Length);
        var slash = rest.IndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1) return null;
        return (rest[..slash].ToString(), rest[(slash + 1)..].ToString());
    }

    public ModelPricing CustomPricing => new(billing.Value.ByokCustomFeePerMTokMicros, billing.Value.ByokCustomFeePerMTokMicros,
        billing.Value.ByokCustomFeePerMTokMicros, 10_000);

    /// <summary>The model's price scaled to the BYOK fee: its margin times the fee percent, rounded up to a whole basis point.</summary>
    public ModelPricing FeePricing(ModelPricing pricing) => pricing with
    {
        MarginBasisPoints = (int)Math.Ceiling(pricing.MarginBasisPoints * billing.Value.ByokFeePercent / 100m),
    };

    /// <summary>The model of a custom endpoint call: routed to the endpoint's provider only.</summary>
    public ResolvedModel Resolve(string id, UserKey endpoint, string upstreamModel) => new(
        id, upstreamModel, "chat", endpoint.Label, UnknownLimit, UnknownLimit, CustomPricing,
        [new ModelRoute { ModelId = id, Provider = endpoint.Custom!.Name, UpstreamModel = upstreamModel }], DateTimeOffset.UnixEpoch);

    /// <summary>The call's BYOK state, or null when the account has no key that applies to the model.</summary>
    public ByokCall? For(AccountKeys keys, ResolvedModel model, ProviderRegistry registry)
    {
        if (keys.IsEmpty) return null;
        if (Parse(model.Id) is { } custom && keys.Custom.TryGetValue(custom.Label, out var endpoint)) return new ByokCall(keys, endpoint, CustomPricing);
        if (model.Pricing is not { } pricing || !ByokCall.Applies(keys, model, registry)) return null;
        return new ByokCall(keys, null, FeePricing(pricing));
    }
}
