using System.Collections.Concurrent;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Features.Providers;
using AiGate.Web.Tests.Features.Providers;
using Polly;

namespace AiGate.Web.Tests.Features.ProviderHealth;

/// <summary>
/// The probe speaks each provider's documented "list models" call: Anthropic <c>GET /v1/models</c> with
/// <c>x-api-key</c> and <c>anthropic-version</c>, Gemini <c>GET /v1beta/models</c> with <c>x-goog-api-key</c>,
/// against <see cref="FakeAnthropic"/> and <see cref="FakeGemini"/>, which answer in those APIs' list shapes (or fail).
/// </summary>
public sealed class ProviderProberTests
{
    private static Provider Fake(ProviderKind kind, Uri baseUrl, HttpMessageInvoker http) => new()
    {
        Name = kind.ToString().ToLowerInvariant(), Kind = kind, BaseUrl = baseUrl,
        ApiKey = kind == ProviderKind.Anthropic ? FakeAnthropic.ProviderKey : FakeGemini.ProviderKey,
        Timeout = TimeSpan.FromSeconds(5), StreamIdleTimeout = TimeSpan.FromSeconds(5),
        Adapter = kind == ProviderKind.Anthropic ? AnthropicAdapter.Instance : GeminiAdapter.Instance,
        Http = http, Breaker = ResiliencePipeline<HttpResponseMessage>.Empty,
    };

    [Fact]
    public async Task Anthropic_and_Gemini_are_probed_with_their_model_lists_and_their_own_key_headers()
    {
        var violations = new ConcurrentQueue<string>();
        var overloaded = false;
        await using var anthropicFake = await FakeAnthropic.StartAsync(violations, () => overloaded);
        await using var geminiFake = await FakeGemini.StartAsync(violations);
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var anthropic = Fake(ProviderKind.Anthropic, anthropicFake.BaseUrl, http);
        var gemini = Fake(ProviderKind.Gemini, geminiFake.BaseUrl, http);

        Assert.True((await ProviderProber.ProbeAsync(anthropic, anthropic.ApiKey, TimeSpan.FromSeconds(5), CancellationToken.None)).Ok);
        Assert.True((await ProviderProber.ProbeAsync(gemini, gemini.ApiKey, TimeSpan.FromSeconds(5), CancellationToken.None)).Ok);
        overloaded = true;
        var failed = await ProviderProber.ProbeAsync(anthropic, anthropic.ApiKey, TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.False(failed.Ok);
        Assert.Equal(529, failed.StatusCode);
        Assert.Equal("HTTP 529", failed.Error);
        var anthropicRequest = anthropicFake.Requests.First();
        var geminiRequest = geminiFake.Requests.First();
        Assert.Equal("/v1/models?limit=1", anthropicRequest.PathAndQuery);
        Assert.Equal(FakeAnthropic.ProviderKey, anthropicRequest.Headers["x-api-key"]);
        Assert.Equal("2023-06-01", anthropicRequest.Headers["anthropic-version"]);
        Assert.Equal("/v1beta/models?pageSize=1", geminiRequest.PathAndQuery);
        Assert.Equal(FakeGemini.ProviderKey, geminiRequest.Headers["x-goog-api-key"]);
        Assert.DoesNotContain("Authorization", geminiRequest.Headers.Keys);
    }

    [Fact]
    public async Task A_provider_that_refuses_connections_is_a_failed_probe_without_an_address_in_the_error()
    {
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var gone = Fake(ProviderKind.Gemini, new Uri("http://127.0.0.1:1"), http);

        var result = await ProviderProber.ProbeAsync(gone, gone.ApiKey, TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.False(result.Ok);
        Assert.Null(result.StatusCode);
        Assert.Equal("unreachable (ConnectionError)", result.Error);
    }
}
