using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using AiGate.Web.Data.Migrations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// PostgreSQL stopped under a running app (issue #11 item 11, RELIABILITY "Database outage"): the app fails
/// closed with 503 + Retry-After in OpenAI's envelope, never 500; keys it already knows keep working while its
/// credit leases are valid (bounded stale-if-error), with no upstream call that credit does not cover; when the
/// database returns, calls succeed again without a restart and every usage row is written. The database is a
/// private cluster of this test (scripts/pg.sh on its own folder and port), so no other test class loses theirs.
/// </summary>
public sealed class DatabaseOutageTests : IAsyncLifetime
{
    private readonly string _pgDir = Path.Combine(Path.GetTempPath(), $"aigate-outage-{Guid.NewGuid():N}");
    private readonly int _pgPort = FreePort();
    private FakeOpenAi _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeOpenAi.StartAsync();

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await PgAsync("stop");
        try { Directory.Delete(_pgDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task<string> PgAsync(string command)
    {
        var (code, stdout, stderr) = await RepoPaths.RunAsync("bash", [Path.Combine(RepoPaths.Root, "scripts", "pg.sh"), command],
            new Dictionary<string, string?> { ["AIGATE_PG_DIR"] = _pgDir, ["AIGATE_PG_PORT"] = _pgPort.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        Assert.True(code == 0, $"scripts/pg.sh {command} failed: {stderr}");
        return stdout.Trim();
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<string> VerbAsync(Dictionary<string, string?> env, params string[] args)
    {
        var (code, stdout, stderr) = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, .. args], env);
        Assert.True(code == 0, $"{args[0]} failed: {stdout}{stderr}");
        return stdout.Trim();
    }

    private static HttpRequestMessage Chat(string key, int maxTokens = 50) => new(HttpMethod.Post, "/api/v1/chat/completions")
    {
        Content = JsonContent.Create(new { model = CreditsApp.Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = maxTokens }),
        Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) },
    };

    private static async Task AssertUnavailableAsync(HttpResponseMessage response, string code)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After");
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("server_error", error["type"]!.GetValue<string>());
        Assert.Equal(code, error["code"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["message"]!.GetValue<string>()));
    }

    /// <summary>The private cluster migrated, the metered model routed to the fake upstream, and two users with $1 each and a key.</summary>
    private async Task<(string Db, Dictionary<string, string?> Env, string KnownKey, string UnknownKey)> SeedAsync(
        params (string Name, string Value)[] settings)
    {
        var db = new NpgsqlConnectionStringBuilder(await PgAsync("url")) { Pooling = false }.ConnectionString;
        await using (var source = NpgsqlDataSource.Create(db))
            await new SchemaMigrator(source, NullLogger<SchemaMigrator>.Instance).ApplyAsync(CancellationToken.None);
        var (known, unknown) = ($"known-{Guid.NewGuid():N}@example.test", $"unknown-{Guid.NewGuid():N}@example.test");
        await ExecuteAsync(db, $"""
            insert into users (id, created_at, user_name, normalized_user_name, email, normalized_email, email_confirmed, security_stamp,
                               phone_number_confirmed, two_factor_enabled, lockout_enabled, access_failed_count)
            values (gen_random_uuid(), now(), '{known}', upper('{known}'), '{known}', upper('{known}'), true, 'x', false, false, false, 0),
                   (gen_random_uuid(), now(), '{unknown}', upper('{unknown}'), '{unknown}', upper('{unknown}'), true, 'x', false, false, false, 0);
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                                cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
            values ('{CreditsApp.Model}', 'Metered', 'chat', 'test', 8192, 1024, 1000000, 1000000, 1000000, 10000, array[]::text[], array['text'], true, now());
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values ('{CreditsApp.Model}', 'fake', 'fake-model', 0, 1, true);
            """);
        var env = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing", ["ConnectionStrings__Default"] = db, ["Jobs__SchedulerEnabled"] = "false",
            ["Credits__LeaseTtlSeconds"] = "10", ["Keys__CacheSeconds"] = "1",
            ["Providers__fake__Kind"] = "openai", ["Providers__fake__BaseUrl"] = _upstream.BaseUrl.ToString(), ["Providers__fake__ApiKey"] = "sk-fake",
            ["Billing__Plans__0__RequestsPerMinute"] = "100000", ["Billing__Plans__0__TokensPerMinute"] = "1000000000",
        };
        foreach (var (name, value) in settings) env[name] = value;
        await Task.WhenAll(VerbAsync(env, "grant-credits", "--email", known, "--usd", "1", "--reason", "test"),
            VerbAsync(env, "grant-credits", "--email", unknown, "--usd", "1", "--reason", "test"));
        var keys = await Task.WhenAll(VerbAsync(env, "create-key", "--email", known, "--name", "k"), VerbAsync(env, "create-key", "--email", unknown, "--name", "k"));
        return (db, env, keys[0], keys[1]);
    }

    /// <summary>Sends <paramref name="key"/>'s call until it is answered 200 (a fresh instance answers 503 until its first lease heartbeat).</summary>
    private static async Task FirstCallAsync(HttpClient http, AppProcess app, string key, int maxTokens = 50)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)   // a fresh instance answers 503 until its first lease heartbeat
        {
            using var first = await http.SendAsync(Chat(key, maxTokens));
            if (first.StatusCode == HttpStatusCode.OK) return;
            Assert.True(first.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline, $"{first.StatusCode}\n{app.Log}");
            await Task.Delay(200);
        }
    }

    /// <summary>No usage lost (one row per upstream call) and the ledger whole: every balance is its ledger, and $2 less what was used.</summary>
    private async Task AssertMoneyAddsUpAsync(string db)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        long rows;
        while ((rows = await ScalarAsync(db, "select count(*) from usage_events")) < _upstream.ChatRequests && DateTime.UtcNow < deadline) await Task.Delay(250);
        Assert.Equal(_upstream.ChatRequests, rows);
        Assert.Equal(await ScalarAsync(db, "select coalesce(sum(balance_micros), 0)::bigint from credit_accounts"),
            await ScalarAsync(db, "select coalesce(sum(amount_micros), 0)::bigint from ledger_entries"));
        Assert.Equal(2_000_000 - await ScalarAsync(db, "select coalesce(sum(cost_micros), 0)::bigint from usage_events"),
            await ScalarAsync(db, "select coalesce(sum(balance_micros), 0)::bigint from credit_accounts"));
    }

    [Fact]
    public async Task Stopping_the_database_fails_closed_with_503_keeps_known_keys_while_leases_hold_and_recovers_without_restart()
    {
        var (db, env, knownKey, unknownKey) = await SeedAsync();
        await using var app = AppProcess.Start(env);
        using var http = new HttpClient { BaseAddress = await app.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(30) };
        var statuses = new List<HttpStatusCode>();
        async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request)
        {
            var response = await http.SendAsync(request);
            lock (statuses) statuses.Add(response.StatusCode);
            return response;
        }
        await FirstCallAsync(http, app, knownKey);
        var ok = 1;
        for (var i = 0; i < 3; i++)
        {
            using var warm = await SendAsync(Chat(knownKey));
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
            ok++;
        }

        await PgAsync("stop");
        NpgsqlConnection.ClearAllPools();
        await Task.Delay(1200);   // past the key cache's 1 s: the next lookup must go to the (stopped) database

        // A key this instance knows keeps working while its lease is valid: the call is covered by credit already held.
        using (var stale = await SendAsync(Chat(knownKey)))
        {
            Assert.Equal(HttpStatusCode.OK, stale.StatusCode);
            ok++;
        }
        // A key it never saw cannot be checked: 503, not 500, and nothing goes upstream.
        using (var fresh = await SendAsync(Chat(unknownKey))) await AssertUnavailableAsync(fresh, "service_unavailable");
        using (var balance = await SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/v1/balance") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", knownKey) } }))
            await AssertUnavailableAsync(balance, "service_unavailable");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/readyz")).StatusCode);

        // Once the lease can no longer be renewed for ¾ of its TTL, even the known key is refused: no upstream spend without credit.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var response = await SendAsync(Chat(knownKey));
            if (response.StatusCode == HttpStatusCode.OK)
            {
                ok++;
                response.Dispose();
                Assert.True(DateTime.UtcNow < deadline, "the known key was still served 20 s into the outage");
                await Task.Delay(250);
                continue;
            }
            await AssertUnavailableAsync(response, "billing_unavailable");
            response.Dispose();
            break;
        }
        using (var again = await SendAsync(Chat(knownKey))) await AssertUnavailableAsync(again, "billing_unavailable");
        Assert.Equal(ok, _upstream.ChatRequests);

        // The database returns: the same process serves both keys again.
        await PgAsync("start");
        deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var response = await SendAsync(Chat(knownKey));
            if (response.StatusCode == HttpStatusCode.OK) { ok++; break; }
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline, $"{response.StatusCode}\n{app.Log}");
            await Task.Delay(250);
        }
        using (var back = await SendAsync(Chat(unknownKey)))
        {
            Assert.Equal(HttpStatusCode.OK, back.StatusCode);
            ok++;
        }
        Assert.DoesNotContain(HttpStatusCode.InternalServerError, statuses);

        // No usage lost: one row per upstream call, including those served during the outage; the ledger is whole.
        Assert.Equal(ok, _upstream.ChatRequests);
        await AssertMoneyAddsUpAsync(db);
    }

    /// <summary>
    /// Freezes (STOP) or thaws (CONT) the private cluster: the postmaster and every backend. Its sockets stay open and
    /// nothing answers, as with a server swapped out or a network that drops packets, unlike a stopped server that refuses.
    /// </summary>
    private async Task SignalClusterAsync(string signal)
    {
        var postmaster = File.ReadLines(Path.Combine(_pgDir, "data", "postmaster.pid")).First().Trim();
        // Stop the postmaster first (it forks no new backend), thaw it last.
        var script = signal == "STOP" ? $"kill -STOP {postmaster} $(pgrep -P {postmaster})" : $"kill -CONT $(pgrep -P {postmaster}) {postmaster}";
        var (code, _, error) = await RepoPaths.RunAsync("bash", ["-c", script]);
        Assert.True(code == 0, $"{script}: {error}");
    }

    [Fact]
    public async Task A_database_that_hangs_gets_calls_an_answer_within_two_seconds_and_every_lease_back_after()
    {
        // Every call needs a top-up from the database: it reserves about 1,000 micro-USD (max_tokens 1,000) and spends
        // about as much (the provider reports 990 output tokens), and a top-up takes only what the call lacks (the cap of
        // 100 micro-USD is below a call's need). The deadline is half the default, so that a loaded test machine's
        // scheduling has a second of room under F10's 2 s.
        const int MaxTokens = 1000;
        var (db, env, knownKey, unknownKey) = await SeedAsync(("Credits__MaxLeaseMicros", "100"), ("Database__ApiTimeoutMs", "500"));
        await using var app = AppProcess.Start(env);
        using var http = new HttpClient { BaseAddress = await app.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(60) };
        await FirstCallAsync(http, app, knownKey);
        _upstream.CompletionTokens = 990;
        await FirstCallAsync(http, app, knownKey, MaxTokens);   // (a top-up slower than the deadline on a loaded machine is a 503 here too)
        var servedBefore = _upstream.ChatRequests;

        await SignalClusterAsync("STOP");
        var answers = new List<(string Key, HttpStatusCode Status, string? Code, TimeSpan Took)>();
        try
        {
            await Task.Delay(1200);   // past the key cache's 1 s: the known key's next lookup goes to the hung database
            var started = DateTime.UtcNow;
            // Seconds of calls, the known key's needing top-ups: each gets an answer within F10's 2 s (a 503 that fails
            // closed, or a 200 from credit already held), never the 15 s of Npgsql's connect timeout or a 500.
            for (var i = 0; DateTime.UtcNow - started < TimeSpan.FromSeconds(4) || i < 6; i++)
            {
                var key = i % 3 == 2 ? unknownKey : knownKey;
                var watch = System.Diagnostics.Stopwatch.StartNew();
                using var response = await http.SendAsync(Chat(key, MaxTokens));
                var body = await response.Content.ReadAsStringAsync();
                var code = response.IsSuccessStatusCode ? null : JsonNode.Parse(body)?["error"]?["code"]?.GetValue<string>();
                answers.Add((key == knownKey ? "known" : "unknown", response.StatusCode, code, watch.Elapsed));
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                    Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After");
                await Task.Delay(150);
            }
            // Readiness says so within its check's 3 s, not after Npgsql's 15 s connect timeout.
            var readiness = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/readyz")).StatusCode);
            Assert.True(readiness.Elapsed < TimeSpan.FromSeconds(5), $"/readyz took {readiness.Elapsed.TotalMilliseconds:0} ms");
        }
        finally
        {
            await SignalClusterAsync("CONT");
        }
        var report = string.Join("\n", answers.Select(a => $"{a.Key} {(int)a.Status} {a.Code} {a.Took.TotalMilliseconds:0} ms"));
        Assert.All(answers, a => Assert.True(a.Took < TimeSpan.FromSeconds(2), $"an answer took {a.Took.TotalMilliseconds:0} ms:\n{report}"));
        Assert.All(answers, a => Assert.Contains(a.Status, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }));
        Assert.Contains(answers, a => a is { Key: "known", Code: "billing_unavailable" });
        Assert.Contains(answers, a => a is { Key: "unknown", Code: "service_unavailable" });
        // Nothing went upstream that credit already held did not cover: a call was forwarded only when it was answered 200.
        Assert.Equal(answers.Count(a => a.Status == HttpStatusCode.OK), _upstream.ChatRequests - servedBefore);

        // Thawed: the same process serves both keys again within F10's 10 s.
        var thawed = DateTime.UtcNow;
        foreach (var key in new[] { knownKey, unknownKey })
            while (true)
            {
                using var response = await http.SendAsync(Chat(key, MaxTokens));
                if (response.StatusCode == HttpStatusCode.OK) break;
                Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow - thawed < TimeSpan.FromSeconds(10),
                    $"{response.StatusCode} {DateTime.UtcNow - thawed} after the thaw\n{report}\n{app.Log}");
                await Task.Delay(100);
            }

        // Stopped gracefully: every lease this instance knew is returned. A top-up that was cut off by its deadline and
        // committed when the database thawed holds credit on a row nobody renews; it expires (the TTL is 10 s) and the
        // sweep returns it. Either way, what the accounts hold is exactly what the lease rows hold, and the money adds up.
        await app.TerminateAsync();
        Assert.Equal(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(await ScalarAsync(db, "select coalesce(sum(held_micros), 0)::bigint from credit_leases"),
            await ScalarAsync(db, "select coalesce(sum(held_micros), 0)::bigint from credit_accounts"));
        await AssertMoneyAddsUpAsync(db);
    }
}
