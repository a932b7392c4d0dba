using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// Graceful shutdown of the built app (issue #11 item 7): on SIGTERM a stream still open near the end of the
/// shutdown window ends with an SSE error event and is billed, every usage record is written before the process
/// exits (upstream calls − usage rows = 0), and the per-instance stream cap answers 503 with Retry-After.
/// </summary>
public sealed class ShutdownTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    private async Task<(AppProcess Child, HttpClient Http, Guid UserId)> StartChildAsync(Dictionary<string, string?> extra)
    {
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 5_000_000);
        var (child, http) = await app.StartInstanceAsync(await app.IssueKeyAsync(userId), extra);
        return (child, http, userId);
    }

    private static object Body(bool stream) => CreditsApp.ChatBody(stream);

    private static Task<HttpResponseMessage> OpenStreamAsync(HttpClient http) =>
        http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/completions") { Content = JsonContent.Create(Body(stream: true)) },
            HttpCompletionOption.ResponseHeadersRead);

    [Fact]
    public async Task Sigterm_mid_stream_ends_it_with_an_sse_error_bills_it_and_loses_no_usage()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.SlowStream;   // 200 ms a word: 300 words take a minute
        app.Upstream.Reply = string.Join(' ', Enumerable.Repeat("word", 300));
        var (child, http, userId) = await StartChildAsync(new()
        {
            // A 6 s shutdown window; streams still open 3 s before its end are closed.
            ["shutdownTimeoutSeconds"] = "6", ["Gateway__ShutdownMarginSeconds"] = "3",
        });
        await using var _ = child;
        using var __ = http;
        try
        {
            // Some finished calls whose usage may still be queued when the signal comes.
            for (var i = 0; i < 3; i++)
                Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync("/api/v1/chat/completions", Body(stream: false))).StatusCode);

            using var response = await OpenStreamAsync(http);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64 * 1024];
            var text = new StringBuilder();
            var read = await stream.ReadAsync(buffer);
            Assert.True(read > 0);
            text.Append(Encoding.UTF8.GetString(buffer, 0, read));

            var signalled = DateTime.UtcNow;
            await child.TerminateAsync();
            while ((read = await stream.ReadAsync(buffer)) > 0) text.Append(Encoding.UTF8.GetString(buffer, 0, read));
            var endedAfter = DateTime.UtcNow - signalled;

            var events = text.ToString().Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("data: [DONE]", events[^1].Trim());
            Assert.True(events.Length >= 2 && events[^2].Contains("\"error\"", StringComparison.Ordinal), $"no error event before [DONE]: {events[^2]}");
            var error = JsonNode.Parse(events[^2].Trim()["data: ".Length..])!["error"]!;
            Assert.Contains("restarting", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal("server_error", error["type"]!.GetValue<string>());
            Assert.InRange(endedAfter.TotalSeconds, 1.5, 6);   // at the window minus the margin, not at once and not cut by the kill

            Assert.Equal(0, await child.WaitForExitAsync(TimeSpan.FromSeconds(30)));

            // Nothing lost: one usage row per upstream call, the stream billed for what it forwarded, the ledger whole.
            var upstreamCalls = app.Upstream.ChatRequests;
            Assert.Equal(upstreamCalls, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
            var streamed = await app.Database.ScalarAsync<long>($"select cost_micros from usage_events where user_id = '{userId}' and streamed");
            Assert.True(streamed > 0, "the cut stream is billed for what was forwarded");
            var (balance, held, ledger) = await app.MoneyAsync(userId);
            Assert.Equal(5_000_000 - await app.UsageCostAsync(userId), balance);
            Assert.Equal(balance, ledger);
            Assert.Equal(0, held);   // the instance returned its lease as it stopped
            Assert.Contains("Usage writer drained at shutdown; 0 records left unwritten", child.Log, StringComparison.Ordinal);
        }
        finally
        {
            app.Upstream.Reset();
            app.Upstream.Reply = "Hello from the fake upstream";
        }
    }

    [Fact]
    public async Task Streams_above_the_per_instance_cap_get_503_with_retry_after_in_openai_shape()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.SlowStream;
        app.Upstream.Reply = string.Join(' ', Enumerable.Repeat("word", 100));
        var (child, http, _) = await StartChildAsync(new() { ["Gateway__MaxConcurrentStreams"] = "1" });
        await using var _c = child;
        using var _h = http;
        try
        {
            using var first = await OpenStreamAsync(http);
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);

            using var second = await OpenStreamAsync(http);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
            Assert.True(second.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
            var error = (await second.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
            Assert.Equal("server_overloaded", error["code"]!.GetValue<string>());
            Assert.Equal("server_error", error["type"]!.GetValue<string>());

            // The cap counts streams only: a plain call still goes through.
            app.Upstream.Mode = FakeOpenAi.Behaviour.Ok;
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync("/api/v1/chat/completions", Body(stream: false))).StatusCode);

            first.Dispose();   // the slot frees when the stream ends
            var deadline = DateTime.UtcNow.AddSeconds(15);
            HttpStatusCode status;
            app.Upstream.Mode = FakeOpenAi.Behaviour.Ok;
            while ((status = (await OpenStreamAsync(http)).StatusCode) != HttpStatusCode.OK && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.Equal(HttpStatusCode.OK, status);
        }
        finally
        {
            app.Upstream.Reset();
            app.Upstream.Reply = "Hello from the fake upstream";
        }
    }
}
