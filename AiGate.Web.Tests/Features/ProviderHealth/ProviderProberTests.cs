using System.Text.Json.Nodes;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Polly;

namespace AiGate.Web.Tests.Features.ProviderHealth;

/// <summary>
/// The probe speaks each provider's documented "list models" call: Anthropic <c>GET /v1/models</c> with
/// <c>x-api-key</c> and <c>anthropic-version</c>, Gemini <c>GET /v1beta/models</c> with <c>x-goog-api-key</c>,
/// against fakes that answer in those APIs' list shapes (or fail).
/// </summary>
public sealed class ProviderProberTests
{
    private static int _status = 200;

    private static Provider Fake(ProviderKind kind, Uri baseUrl, HttpMessageInvoker http) => new()
    {
        Name = kind.ToString().ToLowerInvariant(), Kind = kind, BaseUrl = baseUrl, ApiKey = "platform-key-" + kind,
        Timeout = TimeSpan.FromSeconds(5), StreamIdleTimeout = TimeSpan.FromSeconds(5),
        Adapter = kind == ProviderKind.Anthropic ? AnthropicAdapter.Instance : GeminiAdapter.Instance,
        Http = http, Breaker = ResiliencePipeline<HttpResponseMessage>.Empty,
    };

    [Fact]
    public async Task Anthropic_and_Gemini_are_probed_with_their_model_lists_and_their_own_key_headers()
    {
        await using var fake = await FakeUpstream.StartAsync(app =>
        {
            app.MapGet("/v1/models", (HttpContext c) => _status != 200
                ? Results.Json(new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = "overloaded_error", ["message"] = "Overloaded" } }, statusCode: 529)
                : Results.Json(new JsonObject
                {
                    ["data"] = new JsonArray(new JsonObject { ["type"] = "model", ["id"] = "claude-sonnet-4-5", ["display_name"] = "Claude Sonnet 4.5", ["created_at"] = "2025-09-29T00:00:00Z" }),
                    ["has_more"] = false, ["first_id"] = "claude-sonnet-4-5", ["last_id"] = "claude-sonnet-4-5",
                }));
            app.MapGet("/v1beta/models", () => Results.Json(new JsonObject
            {
                ["models"] = new JsonArray(new JsonObject { ["name"] = "models/gemini-2.5-flash", ["displayName"] = "Gemini 2.5 Flash" }),
                ["nextPageToken"] = "next",
            }));
        });
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var anthropic = Fake(ProviderKind.Anthropic, fake.BaseUrl, http);
        var gemini = Fake(ProviderKind.Gemini, fake.BaseUrl, http);

        _status = 200;
        Assert.True((await ProviderProber.ProbeAsync(anthropic, TimeSpan.FromSeconds(5), CancellationToken.None)).Ok);
        Assert.True((await ProviderProber.ProbeAsync(gemini, TimeSpan.FromSeconds(5), CancellationToken.None)).Ok);
        _status = 529;
        var failed = await ProviderProber.ProbeAsync(anthropic, TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.False(failed.Ok);
        Assert.Equal(529, failed.StatusCode);
        Assert.Equal("HTTP 529", failed.Error);
        var requests = fake.Requests.ToList();
        Assert.Equal("/v1/models?limit=1", requests[0].PathAndQuery);
        Assert.Equal("platform-key-Anthropic", requests[0].Headers["x-api-key"]);
        Assert.Equal("2023-06-01", requests[0].Headers["anthropic-version"]);
        Assert.Equal("/v1beta/models?pageSize=1", requests[1].PathAndQuery);
        Assert.Equal("platform-key-Gemini", requests[1].Headers["x-goog-api-key"]);
        Assert.DoesNotContain("Authorization", requests[1].Headers.Keys);
    }

    [Fact]
    public async Task A_provider_that_refuses_connections_is_a_failed_probe_without_an_address_in_the_error()
    {
        using var http = new HttpMessageInvoker(new SocketsHttpHandler());
        var gone = Fake(ProviderKind.Gemini, new Uri("http://127.0.0.1:1"), http);

        var result = await ProviderProber.ProbeAsync(gone, TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.False(result.Ok);
        Assert.Null(result.StatusCode);
        Assert.Equal("unreachable (ConnectionError)", result.Error);
    }
}
