using Polly;

namespace AiGate.Web.Features.Providers;

/// <summary>A configured provider, ready to call: where, with which key, how to speak to it, and its circuit breaker.</summary>
public sealed class Provider
{
    public required string Name { get; init; }
    public required ProviderKind Kind { get; init; }
    public required Uri BaseUrl { get; init; }
    public required string? ApiKey { get; init; }
    /// <summary>Time to first byte of a streamed call, per attempt.</summary>
    public required TimeSpan Timeout { get; init; }
    /// <summary>The whole of a non-streamed call (its headers come when the generation is done).</summary>
    public TimeSpan NonStreamTimeout { get; init; } = TimeSpan.FromMinutes(10);
    public required TimeSpan StreamIdleTimeout { get; init; }
    public required ProviderAdapter Adapter { get; init; }
    public required HttpMessageInvoker Http { get; init; }
    /// <summary>Opens at ≥ 50 % failures over ≥ 20 calls in 30 s, for 15 s (RELIABILITY F4); while open, routing skips the provider.</summary>
    public required ResiliencePipeline<HttpResponseMessage> Breaker { get; init; }
    /// <summary>The provider serves OpenAI's Responses API (<c>POST {base}/responses</c>): /api/v1/responses forwards to it instead of translating.</summary>
    public bool SupportsResponses { get; init; }
    /// <summary>The HTTP version of every request to it, and whether a lower one may be negotiated.</summary>
    public Version HttpVersion { get; init; } = System.Net.HttpVersion.Version11;
    public HttpVersionPolicy HttpVersionPolicy { get; init; } = HttpVersionPolicy.RequestVersionOrLower;

    /// <summary>Puts this provider's HTTP version on a request built for it.</summary>
    public void Prepare(HttpRequestMessage request)
    {
        request.Version = HttpVersion;
        request.VersionPolicy = HttpVersionPolicy;
    }

    /// <summary>
    /// The URL of a path under the base URL ("chat/completions" → https://api.openai.com/v1/chat/completions). A Uri is
    /// immutable, so each path's is made once and shared by every request (issue 16: parsing it was a fifth of a call's
    /// request building); the cache stops growing at 256 paths (pass-through paths come from clients).
    /// </summary>
    public Uri Url(string relativePath) =>
        _urls.GetOrAdd(relativePath, BaseUrl, static (path, baseUrl) => new Uri(baseUrl.AbsoluteUri.TrimEnd('/') + "/" + path));

    private readonly Infrastructure.BoundedCache<string, Uri> _urls = new(256, StringComparer.Ordinal);
}
