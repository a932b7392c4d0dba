using System.Collections.Frozen;
using System.Net;
using AiGate.Web.Features.Models;
using AiGate.Web.Infrastructure;
using Polly;
using Polly.CircuitBreaker;

namespace AiGate.Web.Features.Providers;

/// <summary>The providers this instance can call, built once from configuration at start.</summary>
public sealed class ProviderRegistry : IDisposable
{
    private readonly SocketsHttpHandler _network;
    public FrozenDictionary<string, Provider> ByName { get; }

    public ProviderRegistry(IConfiguration configuration, IHostEnvironment environment, ModelCatalog catalog)
    {
        // One connection pool for every network provider (STYLE §6): bytes pass through untouched,
        // no redirects (an upstream must not bounce us elsewhere), deadlines come from tokens.
        _network = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            MaxResponseHeadersLength = 64,   // KiB (RELIABILITY R6)
        };
        var network = new HttpMessageInvoker(_network, disposeHandler: false);
        var echo = new HttpMessageInvoker(new EchoUpstreamHandler(), disposeHandler: true);

        var providers = new Dictionary<string, Provider>(StringComparer.Ordinal);
        foreach (var section in configuration.GetSection("Providers").GetChildren())
        {
            var options = section.Get<ProviderOptions>() ?? new ProviderOptions();
            var name = section.Key;
            var kind = options.Kind.Trim().ToLowerInvariant() switch
            {
                "openai" => ProviderKind.OpenAi,
                "anthropic" => ProviderKind.Anthropic,
                "gemini" => ProviderKind.Gemini,
                "echo" => ProviderKind.Echo,
                _ => throw new StartupConfigurationException($"Providers__{name}__Kind must be openai, anthropic, gemini or echo."),
            };
            if (kind == ProviderKind.Echo && environment.IsProduction())
                throw new StartupConfigurationException($"Provider '{name}' is the echo provider, which is for development only; remove it in Production.");
            var baseUrl = options.BaseUrl ?? kind switch
            {
                ProviderKind.OpenAi => "https://api.openai.com/v1",
                ProviderKind.Anthropic => "https://api.anthropic.com",
                ProviderKind.Gemini => "https://generativelanguage.googleapis.com",
                _ => "http://echo.invalid/v1",
            };
            if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
                throw new StartupConfigurationException($"Providers__{name}__BaseUrl must be an absolute http(s) URL.");
            var http2 = options.HttpVersion.Trim() switch
            {
                "1.1" or "1" => false,
                "2" or "2.0" => true,
                _ => throw new StartupConfigurationException($"Providers__{name}__HttpVersion must be 1.1 or 2."),
            };
            // A provider without Providers__X__ApiKey is served by the keys stored in the vault (ProviderKeyRing);
            // with neither, its routes are skipped and the ring logs it.

            providers[name] = new Provider
            {
                Name = name,
                Kind = kind,
                BaseUrl = uri,
                ApiKey = options.ApiKey,
                Timeout = TimeSpan.FromSeconds(options.TimeoutSeconds),
                NonStreamTimeout = TimeSpan.FromSeconds(options.NonStreamTimeoutSeconds),
                StreamIdleTimeout = TimeSpan.FromSeconds(options.StreamIdleSeconds),
                Adapter = kind switch
                {
                    ProviderKind.OpenAi or ProviderKind.Echo => OpenAiAdapter.Instance,
                    ProviderKind.Anthropic => AnthropicAdapter.Instance,
                    ProviderKind.Gemini => GeminiAdapter.Instance,
                    _ => throw new StartupConfigurationException($"Provider kind {kind} is not supported."),
                },
                Http = kind == ProviderKind.Echo ? echo : network,
                Breaker = BuildBreaker(),
                SupportsResponses = kind == ProviderKind.OpenAi && (options.ResponsesApi ?? uri.Host == "api.openai.com"),
                HttpVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
                // Plain http has no negotiation: HTTP/2 there is prior knowledge, exactly.
                HttpVersionPolicy = http2 && uri.Scheme == Uri.UriSchemeHttp ? HttpVersionPolicy.RequestVersionExact : HttpVersionPolicy.RequestVersionOrLower,
            };
        }
        ByName = providers.ToFrozenDictionary(StringComparer.Ordinal);
        catalog.ConfiguredProviders = ByName.Keys.ToFrozenSet(StringComparer.Ordinal);
    }

    internal static ResiliencePipeline<HttpResponseMessage> BuildBreaker() =>
        new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                FailureRatio = 0.5,
                MinimumThroughput = 20,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = TimeSpan.FromSeconds(15),
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutException>()
                    .HandleResult(static r => IsProviderFailure(r.StatusCode)),
            })
            .Build();

    /// <summary>Statuses that say the provider, not the request, is at fault: worth another route.</summary>
    public static bool IsProviderFailure(HttpStatusCode status) =>
        (int)status >= 500 || status is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout
            or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound;

    public void Dispose() => _network.Dispose();
}
