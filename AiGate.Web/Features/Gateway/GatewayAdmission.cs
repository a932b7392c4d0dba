using AiGate.Web.Features.Keys;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// What every metered /api/v1 call passes before its body is read (issue 11 #5), in this order: its key (401),
/// one request from the key's and the account's request rates (429), and a place among the account's calls in
/// flight (429 <c>concurrency_limit_exceeded</c>). A client that is refused costs no read and no parse of a body.
/// </summary>
public sealed class GatewayAdmission(ApiKeyAuthenticator authenticator, RateLimits rateLimits, AccountConcurrency concurrency)
{
    /// <summary>
    /// Admits the call or writes the refusal; dispose the result when the call ends (it holds the account's place).
    /// <paramref name="anthropicKey"/>: the key may also come in <c>x-api-key</c>, as Anthropic's SDKs send it.
    /// </summary>
    public async ValueTask<Admitted> AdmitAsync(HttpContext context, bool anthropicKey = false)
    {
        var key = anthropicKey ? await authenticator.AuthenticateAnthropicAsync(context) : await authenticator.AuthenticateAsync(context);
        if (key is null)
        {
            await ApiErrors.InvalidApiKeyAsync(context);
            return default;
        }
        if (!await rateLimits.AdmitRequestAsync(context, key)) return default;
        var place = concurrency.TryEnter(key.OwnerId);
        if (!place.Entered)
        {
            await concurrency.RefuseAsync(context);
            return default;
        }
        return new Admitted(key, place);
    }

    /// <summary>An admitted call's key (null when refused) and its place among the account's calls in flight.</summary>
    public readonly struct Admitted(KeyIdentity? key, AccountConcurrency.Slot place) : IDisposable
    {
        public KeyIdentity? Key => key;

        public void Dispose() => place.Dispose();
    }
}
