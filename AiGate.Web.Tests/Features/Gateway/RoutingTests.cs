using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>Two OpenAI-compatible fakes, "primary" and "backup", serving one model with two routes.</summary>
public sealed class RoutingApp : AiGateApp
{
    public const string Model = "test/routed";
    public FakeOpenAi Primary { get; private set; } = null!;
    public FakeOpenAi Backup { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Primary = await FakeOpenAi.StartAsync();
        Backup = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
        await Database.InsertTwoRouteModelAsync(Model, "Routed", 2000000, 8000000, 500000, 15000);
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:primary:Kind"] = "openai", ["Providers:primary:BaseUrl"] = Primary.BaseUrl.ToString(),
        ["Providers:primary:ApiKey"] = "sk-primary-provider-key", ["Providers:primary:TimeoutSeconds"] = "1",
        ["Providers:primary:NonStreamTimeoutSeconds"] = "2",
        ["Providers:primary:StreamIdleSeconds"] = "2",
        // A client that leaves mid-stream: the upstream is read on for 2 s (not 30), then cut off.
        ["Gateway:StreamDrainSeconds"] = "2",
        ["Providers:backup:Kind"] = "openai", ["Providers:backup:BaseUrl"] = Backup.BaseUrl.ToString(),
        ["Providers:backup:ApiKey"] = "sk-backup-provider-key",
    };

    public void ResetFakes()
    {
        Primary.Reset();
        Backup.Reset();
    }
}

public sealed class RoutingTests(RoutingApp app) : IClassFixture<RoutingApp>
{
    private static object Chat(bool stream = false, bool includeUsage = false) => stream
        ? new { model = RoutingApp.Model, messages = new[] { new { role = "user", content = "hi" } }, stream = true, stream_options = new { include_usage = includeUsage } }
        : new { model = RoutingApp.Model, messages = new[] { new { role = "user", content = "hi" } } };

    [Fact]
    public async Task Healthy_primary_serves_and_the_response_explains_its_cost()
    {
        app.ResetFakes();
        var (client, _, _) = await app.CreateApiClientAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("primary", response.Headers.GetValues("X-AiGate-Provider").Single());
        Assert.Equal(RoutingApp.Model, body!["model"]!.GetValue<string>());
        Assert.Equal("Hello from the fake upstream", body["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        // 11 prompt × $2/M + 7 completion × $8/M = 22 + 56 = 78 micro-USD, × 1.5 margin = 117 micro-USD.
        Assert.Equal(0.000117m, body["usage"]!["cost"]!.GetValue<decimal>());
        Assert.Equal("0.000117", response.Headers.GetValues("X-AiGate-Cost-Usd").Single());
        Assert.Matches(@"^gateway;dur=[\d.]+, upstream;dur=[\d.]+$", response.Headers.GetValues("Server-Timing").Single());
        Assert.False(string.IsNullOrEmpty(response.Headers.GetValues("X-Request-Id").Single()));
        Assert.Equal(1, app.Primary.ChatRequests);
        Assert.Equal(0, app.Backup.ChatRequests);
    }

    [Fact]
    public async Task A_whole_answer_is_sent_with_its_length_whether_short_or_longer_than_the_first_pooled_buffer()
    {
        app.ResetFakes();
        var (client, _, _) = await app.CreateApiClientAsync();
        try
        {
            // A Content-Length (not chunked: the closing chunk would be a second send); the long one outgrows the 4 KB first buffer.
            foreach (var reply in new[] { "Hello", string.Concat(Enumerable.Repeat(LongReply.Text, 4)) })
            {
                app.Primary.Reply = reply;
                using var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
                // The header as sent (ContentLength would be computed from the body once it is read).
                Assert.True(response.Content.Headers.NonValidated.TryGetValues("Content-Length", out var sent), "no Content-Length");
                var bytes = await response.Content.ReadAsByteArrayAsync();
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal(bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), sent.Single());
                Assert.Equal(reply, JsonNode.Parse(bytes)!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
            }
        }
        finally
        {
            app.Primary.Reply = "Hello from the fake upstream";
        }
    }

    [Fact]
    public async Task Upstream_gets_the_provider_key_and_its_model_name_never_the_users_key()
    {
        app.ResetFakes();
        var (client, userKey, _) = await app.CreateApiClientAsync();

        await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        var request = Assert.Single(app.Primary.Requests);
        Assert.Equal("Bearer sk-primary-provider-key", request.Headers["Authorization"]);
        Assert.DoesNotContain(request.Headers, h => h.Value.Contains(userKey, StringComparison.Ordinal));
        Assert.DoesNotContain(userKey, request.Body, StringComparison.Ordinal);
        Assert.Equal("up-model-a", JsonNode.Parse(request.Body)!["model"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(FakeOpenAi.Behaviour.Fail500)]
    [InlineData(FakeOpenAi.Behaviour.Fail429)]
    public async Task Failing_primary_fails_over_to_the_backup_before_any_byte_reaches_the_client(FakeOpenAi.Behaviour fault)
    {
        app.ResetFakes();
        app.Primary.Mode = fault;
        var (client, _, _) = await app.CreateApiClientAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("backup", response.Headers.GetValues("X-AiGate-Provider").Single());
        Assert.Equal(1, app.Primary.ChatRequests);
        Assert.Equal(1, app.Backup.ChatRequests);
        Assert.Equal("up-model-b", JsonNode.Parse(app.Backup.Requests.Single().Body)!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_primary_that_took_the_request_and_went_silent_is_not_retried_elsewhere()
    {
        app.ResetFakes();
        app.Primary.Mode = FakeOpenAi.Behaviour.Hang;   // it has the request and may be generating (and billing us) for it
        var (client, _, _) = await app.CreateApiClientAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal(1, app.Primary.ChatRequests);
        Assert.Equal(0, app.Backup.ChatRequests);
        // The timed-out attempt's request is dropped, not left open at the provider. Waiting for it here also keeps its
        // abort from landing in the next test's count (the client-disconnect test counts the fake's aborts).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (app.Primary.Aborted == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(1, app.Primary.Aborted);
    }

    [Fact]
    public async Task Every_route_failing_gives_a_502_in_OpenAI_shape()
    {
        app.ResetFakes();
        app.Primary.Mode = FakeOpenAi.Behaviour.Fail500;
        app.Backup.Mode = FakeOpenAi.Behaviour.Fail500;
        var (client, _, _) = await app.CreateApiClientAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("server_error", error["type"]!.GetValue<string>());
        Assert.Equal("upstream_error", error["code"]!.GetValue<string>());
        // Two routes, at least three attempts: primary, backup, primary again.
        Assert.Equal(3, app.Primary.ChatRequests + app.Backup.ChatRequests);
    }

    [Fact]
    public async Task A_request_the_provider_rejects_is_passed_on_not_retried()
    {
        app.ResetFakes();
        app.Primary.Mode = FakeOpenAi.Behaviour.Fail400;
        var (client, _, _) = await app.CreateApiClientAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Invalid value for 'logit_bias': upstream says no.", error["message"]!.GetValue<string>());
        Assert.Equal(0, app.Backup.ChatRequests);
    }

    [Fact]
    public async Task Stream_relays_chunks_and_strips_the_usage_chunk_the_client_did_not_ask_for()
    {
        app.ResetFakes();
        var (client, _, _) = await app.CreateApiClientAsync();

        var events = await ReadEventsAsync(client, Chat(stream: true, includeUsage: false));

        Assert.Equal("[DONE]", events[^1]);
        Assert.DoesNotContain(events, e => e.Contains("\"usage\":{", StringComparison.Ordinal));
        Assert.Equal("Hello from the fake upstream", string.Concat(events.SkipLast(1).Select(Content)));
        // We asked the upstream for usage anyway, to bill from the provider's own count.
        Assert.True(JsonNode.Parse(app.Primary.Requests.Single().Body)!["stream_options"]!["include_usage"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Stream_with_include_usage_ends_with_usage_and_cost()
    {
        app.ResetFakes();
        var (client, _, _) = await app.CreateApiClientAsync();

        var events = await ReadEventsAsync(client, Chat(stream: true, includeUsage: true));
        var usage = JsonNode.Parse(events[^2])!["usage"]!;

        Assert.Equal(11, usage["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(7, usage["completion_tokens"]!.GetValue<int>());
        Assert.Equal(0.000117m, usage["cost"]!.GetValue<decimal>());
    }

    [Fact]
    public async Task Upstream_breaking_mid_stream_is_not_retried_and_the_client_gets_an_error_event_then_done()
    {
        app.ResetFakes();
        app.Primary.Mode = FakeOpenAi.Behaviour.DropAfterTwoChunks;
        var (client, _, _) = await app.CreateApiClientAsync();

        var events = await ReadEventsAsync(client, Chat(stream: true));

        Assert.Equal("Hello from", string.Concat(events.Where(e => e.Contains("\"delta\"", StringComparison.Ordinal)).Select(Content)));
        Assert.Equal("[DONE]", events[^1]);
        var error = JsonNode.Parse(events[^2])!["error"]!;
        Assert.Equal("server_error", error["type"]!.GetValue<string>());
        Assert.Equal(0, app.Backup.ChatRequests);
    }

    /// <summary>The drain after a client leaves (RELIABILITY F5) is bounded: past it, the upstream request is cancelled.</summary>
    [Fact]
    public async Task Client_disconnect_cancels_the_upstream_request_when_the_drain_runs_out()
    {
        app.ResetFakes();
        app.Primary.Mode = FakeOpenAi.Behaviour.SlowStream;
        app.Primary.Reply = string.Join(' ', Enumerable.Repeat("word", 50));
        try
        {
            var (client, _, _) = await app.CreateApiClientAsync();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/completions") { Content = JsonContent.Create(Chat(stream: true)) };
            using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
            {
                await using var stream = await response.Content.ReadAsStreamAsync();
                var buffer = new byte[256];
                Assert.True(await stream.ReadAsync(buffer) > 0);
            }   // the client goes away after the first bytes; the 10 s stream is read on for 2 s
            var left = DateTime.UtcNow;

            var deadline = DateTime.UtcNow.AddSeconds(8);
            while (app.Primary.Aborted == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.Equal(1, app.Primary.Aborted);
            Assert.InRange((DateTime.UtcNow - left).TotalSeconds, 1.5, 8);
        }
        finally
        {
            app.Primary.Reply = "Hello from the fake upstream";
        }
    }

    private static async Task<List<string>> ReadEventsAsync(HttpClient client, object body)
    {
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        return [.. text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e[6..] : e)];
    }

    private static string Content(string json) =>
        JsonNode.Parse(json)?["choices"] is JsonArray { Count: > 0 } choices ? choices[0]!["delta"]?["content"]?.GetValue<string>() ?? "" : "";
}
