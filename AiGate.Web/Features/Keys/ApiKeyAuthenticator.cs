using AiGate.Web.Features.Gateway;

namespace AiGate.Web.Features.Keys;

/// <summary>
/// Authenticates an /api/v1 request by its bearer key, and nothing else: no cookie, no session
/// (RELIABILITY K11), so there is no ambient credential to forge a request with.
/// </summary>
public sealed class ApiKeyAuthenticator(ApiKeyCache cache)
{
    /// <summary>
    /// The key's identity, or null: the caller answers the one 401. A key of a suspended account is valid but refused
    /// here with a 403 that says so; the caller's 401 then writes nothing (ApiErrors never writes over a started response).
    /// </summary>
    public ValueTask<KeyIdentity?> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization;
        if (header.Count != 1) return ValueTask.FromResult<KeyIdentity?>(null);
        var value = header[0].AsSpan().Trim();
        if (value.Length < 8 || !value[..7].Equals("Bearer ", StringComparison.OrdinalIgnoreCase)) return ValueTask.FromResult<KeyIdentity?>(null);
        var found = cache.FindAsync(value[7..].Trim().ToString(), context.RequestAborted);
        // The steady state (a cached, usable key) stays synchronous: no state machine per request.
        if (found.IsCompletedSuccessfully && found.Result is not { Suspended: true }) return found;
        return RefuseSuspendedAsync(found, context);
    }

    private static async ValueTask<KeyIdentity?> RefuseSuspendedAsync(ValueTask<KeyIdentity?> pending, HttpContext context)
    {
        var identity = await pending;
        if (identity is not { Suspended: true }) return identity;
        await ApiErrors.AccountSuspendedAsync(context);
        return null;
    }

    /// <summary>
    /// Anthropic's way first, as its SDKs send the key (<c>x-api-key</c>), then the bearer header (their <c>auth_token</c>
    /// option). Only <c>/api/v1/messages</c> takes it: the OpenAI-shaped endpoints keep one way in.
    /// </summary>
    public ValueTask<KeyIdentity?> AuthenticateAnthropicAsync(HttpContext context)
    {
        var header = context.Request.Headers["x-api-key"];
        if (header.Count == 0) return AuthenticateAsync(context);
        if (header.Count != 1 || string.IsNullOrWhiteSpace(header[0])) return ValueTask.FromResult<KeyIdentity?>(null);
        return cache.FindAsync(header[0]!.Trim(), context.RequestAborted);
    }
}
