using System.Net;
using System.Net.Http.Json;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>
/// An OpenAI-compatible upstream that speaks only HTTP/2 without TLS (prior knowledge), as a private-network
/// model server may: <c>Providers__X__HttpVersion=2</c> reaches it; HTTP/1.1 would not get an answer.
/// </summary>
public sealed class H2cApp : AiGateApp
{
    public const string Model = "test/h2c";
    private WebApplication _upstream = null!;
    public Uri UpstreamUrl { get; private set; } = null!;
    public System.Collections.Concurrent.ConcurrentQueue<string> Protocols { get; } = new();

    public override async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        _upstream = builder.Build();
        _upstream.MapPost("/v1/chat/completions", (HttpContext context) =>
        {
            Protocols.Enqueue(context.Request.Protocol);
            return Results.Text("""
                {"id":"chatcmpl-h2","object":"chat.completion","created":1741570283,"model":"h2-model","choices":[{"index":0,"message":{"role":"assistant","content":"over h2"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}
                """, "application/json");
        });
        await _upstream.StartAsync();
        var address = _upstream.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        UpstreamUrl = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/v1");
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(Model, "H2c", "h2", "h2-model");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:h2:Kind"] = "openai", ["Providers:h2:BaseUrl"] = UpstreamUrl.ToString(), ["Providers:h2:ApiKey"] = "sk-h2",
        ["Providers:h2:HttpVersion"] = "2",
    };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _upstream.DisposeAsync();
    }
}

public sealed class ProviderHttpVersionTests(H2cApp app) : IClassFixture<H2cApp>
{
    [Fact]
    public async Task A_provider_set_to_http2_is_called_over_http2_with_prior_knowledge_on_plain_http()
    {
        var (client, _, userId) = await app.CreateApiClientAsync();
        using var response = await client.PostAsJsonAsync("/api/v1/chat/completions",
            new { model = H2cApp.Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 20 });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("over h2", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("HTTP/2", Assert.Single(app.Protocols));
        await app.WaitForUsageAsync();
        Assert.Equal(7, await app.Database.ScalarAsync<long>($"select cost_micros from usage_events where user_id = '{userId}'"));
    }
}
