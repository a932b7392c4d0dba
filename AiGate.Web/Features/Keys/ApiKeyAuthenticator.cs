namespace AiGate.Web.Features.Keys;

/// <summary>
/// Authenticates an /api/v1 request by its bearer key, and nothing else: no cookie, no session
/// (RELIABILITY K11), so there is no ambient credential to forge a request with.
/// </summary>
public sealed class ApiKeyAuthenticator(ApiKeyCache cache)
{
    public ValueTask<KeyIdentity?> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization;
        if (header.Count != 1) return ValueTask.FromResult<KeyIdentity?>(null);
        var value = header[0].AsSpan().Trim();
        if (value.Length < 8 || !value[..7].Equals("Bearer ", StringComparison.OrdinalIgnoreCase)) return ValueTask.FromResult<KeyIdentity?>(null);
        return cache.FindAsync(value[7..].Trim().ToString(), context.RequestAborted);
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
