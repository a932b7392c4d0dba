using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Features.Gateway;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// The three provider fakes (OpenAI, Anthropic, Gemini) and one model of each kind, as for stream billing;
/// this in-process app heartbeats every 3 s (lease TTL 10 s, the shortest allowed, instead of 60 s and 10 s), so it
/// sweeps a killed instance's expired leases within 3 s of their expiry.
/// </summary>
public sealed class ProviderStopApp : StreamBillingApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Credits:LeaseTtlSeconds"] = "10",
    };

    /// <summary>The environment of a child instance of the built app on this database and these fakes (lease TTL 10 s).</summary>
    public Dictionary<string, string?> ChildEnvironment() => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Testing", ["ConnectionStrings__Default"] = Database.ConnectionString,
        ["Jobs__SchedulerEnabled"] = "false", ["Credits__LeaseTtlSeconds"] = "10",
        ["Providers__fake__Kind"] = "openai", ["Providers__fake__BaseUrl"] = OpenAi.BaseUrl.ToString(), ["Providers__fake__ApiKey"] = "sk-fake",
        ["Providers__anthropic__Kind"] = "anthropic", ["Providers__anthropic__BaseUrl"] = Anthropic.BaseUrl.ToString(),
        ["Providers__anthropic__ApiKey"] = FakeAnthropic.ProviderKey,
        ["Providers__gemini__Kind"] = "gemini", ["Providers__gemini__BaseUrl"] = GeminiFake.BaseUrl.ToString(),
        ["Providers__gemini__ApiKey"] = FakeGemini.ProviderKey,
        // The slow streams leave 200 ms between events: far from any idle timeout.
        ["Providers__fake__StreamIdleSeconds"] = "30", ["Providers__anthropic__StreamIdleSeconds"] = "30", ["Providers__gemini__StreamIdleSeconds"] = "30",
        ["Billing__Plans__0__RequestsPerMinute"] = "100000", ["Billing__Plans__0__TokensPerMinute"] = "1000000000",
    };
}

/// <summary>
/// An instance that stops in the middle of a stream, for every provider kind (issue 11, RELIABILITY F7 and
/// "Usage durability"), through the built app as a child process and each provider's own wire format. On
/// SIGTERM the open stream ends with an error event and [DONE], is billed at least what it forwarded, every
/// upstream call has its usage row and the lease goes back before exit 0. On SIGKILL nothing more can be written:
/// the lease expires, another instance sweeps it and charges the open stream from its last checkpoint, and the
/// ledger stays whole with a non-negative balance.
/// </summary>
public sealed class ProviderStopTests(ProviderStopApp app) : IClassFixture<ProviderStopApp>
{
    private const long Grant = 5_000_000;

    public static TheoryData<string> Kinds => new() { "openai", "anthropic", "gemini" };

    private static string ModelOf(string kind) => kind switch
    {
        "openai" => StreamBillingApp.Gpt,
        "anthropic" => StreamBillingApp.Claude,
        _ => StreamBillingApp.Gemini,
    };

    /// <summary>Empties the fakes' request logs and makes the OpenAI fake stream the long reply a word every 200 ms (the others are slowed by SLOW in the prompt).</summary>
    private void ResetFakes()
    {
        app.OpenAi.Reset();
        app.OpenAi.Mode = FakeOpenAi.Behaviour.SlowStream;
        app.OpenAi.Reply = LongReply.Text;
        app.Anthropic.Requests.Clear();
        app.GeminiFake.Requests.Clear();
    }

    /// <summary>The chat calls (not health probes) that reached the fake of <paramref name="kind"/>.</summary>
    private int UpstreamCalls(string kind) => kind switch
    {
        "openai" => app.OpenAi.ChatRequests,
        "anthropic" => app.Anthropic.Requests.Count(r => r.Method == "POST" && r.PathAndQuery == "/v1/messages"),
        _ => app.GeminiFake.Requests.Count(r => r.Method == "POST" && r.PathAndQuery.StartsWith("/v1beta/models/gemini-2.5-flash:", StringComparison.Ordinal)),
    };

    private static HttpRequestMessage ChatRequest(string kind, bool stream) => new(HttpMethod.Post, "/api/v1/chat/completions")
    {
        Content = JsonContent.Create(new Dictionary<string, object?>
        {
            ["model"] = ModelOf(kind), ["stream"] = stream, ["max_tokens"] = 2000,
            ["messages"] = new[] { new { role = "user", content = stream ? "Write something LONG please (SLOW)" : "hi" } },
        }),
    };

    /// <summary>A child instance, ready: a plain call of <paramref name="kind"/> passed (a fresh instance answers 503 until its first lease heartbeat).</summary>
    private async Task<(AppProcess Child, HttpClient Http, Guid UserId)> StartChildAsync(string kind, Dictionary<string, string?>? extra = null)
    {
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, Grant);
        var key = await app.IssueKeyAsync(userId);
        var environment = app.ChildEnvironment();
        foreach (var (k, v) in extra ?? []) environment[k] = v;
        var child = AppProcess.Start(environment);
        var http = new HttpClient { BaseAddress = await child.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var first = await http.SendAsync(ChatRequest(kind, stream: false));
            if (first.StatusCode == HttpStatusCode.OK) break;
            Assert.True(first.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline, $"{first.StatusCode}\n{child.Log}");
            await Task.Delay(200);
        }
        return (child, http, userId);
    }

    /// <summary>An open stream whose first content delta has arrived: credit is reserved and text is flowing.</summary>
    private static async Task<(HttpResponseMessage Response, StreamReader Reader, System.Text.StringBuilder Text)> OpenFlowingStreamAsync(HttpClient http, string kind)
    {
        var response = await http.SendAsync(ChatRequest(kind, stream: true), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new System.Text.StringBuilder();
        while (text.Length == 0 && await reader.ReadLineAsync() is { } line)
            if (line.StartsWith("data: {", StringComparison.Ordinal) && Content(line) is { } content) text.Append(content);
        Assert.True(text.Length > 0, "the stream sent no text");
        return (response, reader, text);
    }

    private static string? Content(string line) =>
        JsonNode.Parse(line["data: ".Length..])!["choices"]?[0]?["delta"]?["content"]?.GetValue<string>();

    [Theory, MemberData(nameof(Kinds))]
    public async Task Sigterm_mid_stream_ends_it_with_an_error_and_done_bills_what_was_sent_and_loses_no_usage(string kind)
    {
        ResetFakes();
        // A 6 s shutdown window; streams still open 3 s before its end are closed.
        var (child, http, userId) = await StartChildAsync(kind, new() { ["shutdownTimeoutSeconds"] = "6", ["Gateway__ShutdownMarginSeconds"] = "3" });
        await using var _ = child;
        using var __ = http;

        // A finished call whose usage may still be queued when the signal comes.
        using (var plain = await http.SendAsync(ChatRequest(kind, stream: false))) Assert.Equal(HttpStatusCode.OK, plain.StatusCode);

        var (response, reader, text) = await OpenFlowingStreamAsync(http, kind);
        using var _r = response;
        using var _s = reader;
        await child.TerminateAsync();
        var data = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            data.Add(line["data: ".Length..]);
            if (line.StartsWith("data: {", StringComparison.Ordinal) && Content(line) is { } content) text.Append(content);
        }

        // The client is told, in OpenAI's shape, then the stream ends as OpenAI's do.
        Assert.True(data.Count >= 2, $"the stream ended with {data.Count} events after the signal");
        Assert.Equal("[DONE]", data[^1]);
        var error = JsonNode.Parse(data[^2])!["error"];
        Assert.True(error is not null, $"no error event before [DONE]: {data[^2]}");
        Assert.Equal("server_error", error!["type"]!.GetValue<string>());
        Assert.Contains("restarting", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(text.Length < LongReply.Text.Length, "the stream was cut, not finished");

        Assert.Equal(0, await child.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        // Nothing lost: one usage row per upstream call (the warm-up, the plain call, the cut stream).
        Assert.Equal(3, UpstreamCalls(kind));
        Assert.Equal(UpstreamCalls(kind), await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
        // The cut stream is billed at least the text it forwarded (plus the thinking its provider produced), as any broken stream.
        var completion = await app.Database.ScalarAsync<long>($"select completion_tokens from usage_events where user_id = '{userId}' and streamed");
        var expected = StreamBillingTests.Expected(kind, text.ToString());
        Assert.True(completion >= expected * 0.9 && completion <= expected * 1.1, $"billed {completion} output tokens; the forwarded text is {expected} (±10 %)");
        var (balance, held, ledger) = await MoneyAsync(userId);
        Assert.Equal(Grant - await UsageCostAsync(userId), balance);
        Assert.Equal(balance, ledger);
        Assert.Equal(0, held);   // the instance returned its lease as it stopped, no sweep needed
        Assert.Contains("Usage writer drained at shutdown; 0 records left unwritten", child.Log, StringComparison.Ordinal);
    }

    /// <summary>
    /// What SIGKILL loses (RELIABILITY F7): the usage the writer had not flushed yet (at most its flush interval, 200 ms,
    /// of finished calls) and the output of the stream in flight since its last checkpoint (every 2 s). Once the dead
    /// instance's lease expires, this test's app sweeps it: the reserved credit comes back, and the stream is charged
    /// from its checkpoint, estimated, at least all but 5 s of the text it had sent and never more than all of it.
    /// </summary>
    [Theory, MemberData(nameof(Kinds))]
    public async Task Kill_9_mid_stream_bills_the_stream_from_its_last_checkpoint_and_leaves_no_credit_held(string kind)
    {
        ResetFakes();
        var (child, http, userId) = await StartChildAsync(kind);
        await using var _ = child;
        using var __ = http;
        using (var plain = await http.SendAsync(ChatRequest(kind, stream: false))) Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        await Task.Delay(1000);   // five flush intervals: the finished calls' usage is written

        var (response, reader, text) = await OpenFlowingStreamAsync(http, kind);
        using var _r = response;
        using var _s = reader;
        // Read for 7 s (three checkpoints), noting how much text had arrived when.
        var seen = new List<(DateTime At, int Length)>();
        var until = DateTime.UtcNow.AddSeconds(7);
        while (DateTime.UtcNow < until && await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("data: {", StringComparison.Ordinal) && Content(line) is { } content) text.Append(content);
            seen.Add((DateTime.UtcNow, text.Length));
        }
        Assert.True(await app.Database.ScalarAsync<long>($"select held_micros from credit_accounts where user_id = '{userId}'") > 0);
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from stream_checkpoints where user_id = '{userId}'"));
        var killedAt = DateTime.UtcNow;
        await child.KillAsync();   // SIGKILL: no shutdown, no flush, no lease return
        Assert.True(text.Length < LongReply.Text.Length, "the stream was still running when the instance died");

        // This test's app sweeps the lease and the checkpoint once the renewal has stopped for the TTL (10 s).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        long held;
        while (((held = await app.Database.ScalarAsync<long>($"select held_micros from credit_accounts where user_id = '{userId}'")) > 0 ||
                await app.Database.ScalarAsync<long>($"select count(*) from stream_checkpoints where user_id = '{userId}'") > 0) && DateTime.UtcNow < deadline)
        {
            var (balanceMeanwhile, _, _) = await MoneyAsync(userId);
            Assert.True(balanceMeanwhile >= 0, $"balance went negative: {balanceMeanwhile}");
            await Task.Delay(250);
        }

        Assert.True(held == 0, $"held {held}; leases: " + await app.Database.ScalarAsync<string>($"select now()::text || coalesce(json_agg(l)::text, '[]') from credit_leases l"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from credit_leases where user_id = '{userId}'"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from stream_checkpoints where user_id = '{userId}'"));
        // Every upstream call has its usage row: the warm-up and the plain call as written, the stream from its checkpoint.
        Assert.Equal(3, UpstreamCalls(kind));
        Assert.Equal(3, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
        var stream = JsonNode.Parse((await app.Database.ScalarAsync<string>(
            $"select row_to_json(u)::text from usage_events u where user_id = '{userId}' and streamed"))!)!;
        Assert.True(stream["estimated"]!.GetValue<bool>());
        var billed = stream["completion_tokens"]!.GetValue<long>();
        var sentFiveSecondsBefore = seen.LastOrDefault(s => s.At <= killedAt.AddSeconds(-5)).Length;
        var atLeast = StreamBillingTests.Expected(kind, text.ToString()[..sentFiveSecondsBefore]);
        var atMost = StreamBillingTests.Expected(kind, text.ToString());
        Assert.True(billed >= atLeast * 0.9 && billed <= atMost * 1.1,
            $"billed {billed} output tokens; the text sent 5 s before the kill is {atLeast}, all the text sent {atMost}");
        var (balance, _, ledger) = await MoneyAsync(userId);
        Assert.Equal(Grant - await UsageCostAsync(userId), balance);
        Assert.Equal(balance, ledger);
        Assert.True(balance >= 0);
    }

    private async Task<(long Balance, long Held, long LedgerSum)> MoneyAsync(Guid userId)
    {
        var balance = await app.Database.ScalarAsync<long>($"select coalesce((select balance_micros from credit_accounts where user_id = '{userId}'), 0)");
        var held = await app.Database.ScalarAsync<long>($"select coalesce((select held_micros from credit_accounts where user_id = '{userId}'), 0)");
        var ledger = await app.Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'");
        return (balance, held, ledger);
    }

    private Task<long> UsageCostAsync(Guid userId) =>
        app.Database.ScalarAsync<long>($"select coalesce(sum(cost_micros), 0)::bigint from usage_events where user_id = '{userId}'");
}
