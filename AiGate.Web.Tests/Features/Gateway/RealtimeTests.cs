using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// The real app on Kestrel (a real port, so real WebSockets), a fake OpenAI Realtime upstream, and three models: a
/// realtime model routed to the fake, one routed to the echo provider, one without audio prices, and a chat model. Text
/// is 1 µ$ a token, audio 8 µ$ in and 4 µ$ out, so costs are exact sums a test can write down.
/// </summary>
public sealed class RealtimeApp : AiGateApp
{
    public const string Model = "openai/gpt-realtime";
    public const string EchoModel = "echo/realtime";
    public const string ChatModel = "test/chat";
    public const string UnpricedModel = "openai/gpt-realtime-unpriced";
    public const string PlatformKey = "sk-platform-realtime";
    public const long Reserve = 10_000;

    public FakeOpenAiRealtime Upstream { get; private set; } = null!;
    public Uri WsBase { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Upstream = await FakeOpenAiRealtime.StartAsync();
        await base.InitializeAsync();
        UseKestrel(0);
        StartServer();
        await Database.InsertMeteredModelAsync(Model, "GPT Realtime", "rt", "gpt-realtime-2025-08-28", ownedBy: "openai", contextLength: 32_000, maxOutputTokens: 4096);
        await Database.InsertMeteredModelAsync(EchoModel, "Echo Realtime", "echo", "echo-realtime");
        await Database.InsertMeteredModelAsync(ChatModel, "Chat", "rt", "gpt-4o-mini");
        // Audio at 8 µ$ a token in and 4 out (gpt-realtime's ratios to its text prices).
        await Database.ExecuteAsync($"""
            update models set kind = 'realtime', audio_input_micros_per_mtok = 8000000, audio_output_micros_per_mtok = 4000000
            where id in ('{Model}', '{EchoModel}')
            """);
        await Database.InsertMeteredModelAsync(UnpricedModel, "No audio price", "rt", "gpt-realtime-mini");
        await Database.ExecuteAsync($"update models set kind = 'realtime' where id = '{UnpricedModel}'");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
        var address = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        WsBase = new Uri(address.Replace("http://", "ws://", StringComparison.Ordinal).Replace("[::]", "127.0.0.1", StringComparison.Ordinal)
            .Replace("localhost", "127.0.0.1", StringComparison.Ordinal));
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:rt:Kind"] = "openai", ["Providers:rt:BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers:rt:ApiKey"] = PlatformKey,
        ["Gateway:RealtimeReserveMicros"] = Reserve.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Gateway:RealtimeIdleSeconds"] = "3",
        ["Gateway:RealtimeDrainSeconds"] = "2",
    };

    public Uri RealtimeUri(string model) => new(WsBase, "/api/v1/realtime?model=" + Uri.EscapeDataString(model));

    public HttpClient Http() => new() { BaseAddress = new Uri(WsBase.ToString().Replace("ws://", "http://", StringComparison.Ordinal)) };

    public async Task<(long Balance, long Held, long LedgerSum)> MoneyAsync(Guid userId)
    {
        var balance = await Database.ScalarAsync<long>($"select coalesce((select balance_micros from credit_accounts where user_id = '{userId}'), 0)");
        var held = await Database.ScalarAsync<long>($"select coalesce((select held_micros from credit_accounts where user_id = '{userId}'), 0)");
        var ledger = await Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'");
        return (balance, held, ledger);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Upstream.DisposeAsync();
    }
}

/// <summary>
/// <c>GET /api/v1/realtime</c> (issue 15): the relay both ways, authentication by header and by subprotocol, every
/// <c>response.done</c> settled exactly as one usage row, and the session closed with an <c>error</c> event when the
/// balance runs out, the key is revoked, or it idles; no reservation is left held after any close.
/// </summary>
public sealed class RealtimeTests(RealtimeApp app) : IClassFixture<RealtimeApp>
{
    /// <summary>What <see cref="FakeOpenAiRealtime.DefaultUsage"/> costs: uncached text 100 + uncached audio 800 × 8 + cached 300 + text out 100 + audio out 400 × 4.</summary>
    private const long DefaultUsageCost = 100 + 800 * 8 + 300 + 100 + 400 * 4;

    private async Task<(string Key, Guid UserId)> UserAsync(long credit = 10_000_000)
    {
        var userId = await app.CreateUserAsync();
        if (credit > 0) await app.GrantAsync(userId, credit);
        return (await app.IssueKeyAsync(userId), userId);
    }

    private async Task<ClientWebSocket> ConnectAsync(string key, string model = RealtimeApp.Model)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + key);
        socket.Options.CollectHttpResponseDetails = true;
        await socket.ConnectAsync(app.RealtimeUri(model), Timeout());
        return socket;
    }

    private static CancellationToken Timeout(int seconds = 15) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    private static Task SendAsync(WebSocket socket, string json) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, Timeout());

    /// <summary>The next whole message: its type and bytes (Close: the close status in <see cref="WebSocket.CloseStatus"/>).</summary>
    private static async Task<(WebSocketMessageType Type, byte[] Bytes)> ReceiveAsync(WebSocket socket, int seconds = 15)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        WebSocketReceiveResult result;
        var ct = Timeout(seconds);
        do
        {
            result = await socket.ReceiveAsync(buffer, ct);
            message.Write(buffer, 0, result.Count);
        } while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
        return (result.MessageType, message.ToArray());
    }

    /// <summary>Reads events until one of <paramref name="type"/> (returned), collecting the types seen on the way.</summary>
    private static async Task<JsonObject> ReceiveUntilAsync(WebSocket socket, string type, List<string>? seen = null, int seconds = 15)
    {
        while (true)
        {
            var (kind, bytes) = await ReceiveAsync(socket, seconds);
            Assert.True(kind != WebSocketMessageType.Close, $"closed ({socket.CloseStatus} {socket.CloseStatusDescription}) before a {type} event");
            if (kind != WebSocketMessageType.Text) continue;
            var ev = JsonNode.Parse(bytes)!.AsObject();
            var t = ev["type"]!.GetValue<string>();
            seen?.Add(t);
            if (t == type) return ev;
        }
    }

    private static async Task AssertClosedAsync(WebSocket socket, int code)
    {
        while (true)
        {
            var (kind, _) = await ReceiveAsync(socket);
            if (kind == WebSocketMessageType.Close) break;
        }
        Assert.Equal(code, (int)socket.CloseStatus!.Value);
    }

    private async Task AssertNothingHeldAsync(Guid userId)
    {
        var leases = app.Services.GetRequiredService<CreditLeases>();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (leases.InFlight(userId) > 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(0, leases.InFlight(userId));
    }

    private Task<long> UsageRowsAsync(Guid userId) => app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'");

    [Fact]
    public async Task Events_and_binary_frames_flow_both_ways_and_the_provider_gets_the_platform_key()
    {
        app.Upstream.Reset();
        var (key, userId) = await UserAsync();
        using var socket = await ConnectAsync(key);
        var created = await ReceiveUntilAsync(socket, "session.created");
        Assert.Equal("gpt-realtime-2025-08-28", created["session"]!["model"]!.GetValue<string>());

        await SendAsync(socket, """{"type":"session.update","session":{"type":"realtime","instructions":"Be brief."}}""");
        var updated = await ReceiveUntilAsync(socket, "session.updated");
        Assert.Equal("Be brief.", updated["session"]!["instructions"]!.GetValue<string>());

        var binary = new byte[70_000];   // bigger than one relay buffer: it travels in fragments
        Random.Shared.NextBytes(binary);
        await socket.SendAsync(binary, WebSocketMessageType.Binary, true, Timeout());
        var (type, echoed) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal(binary, echoed);

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", Timeout());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);

        var session = Assert.Single(app.Upstream.Sessions);
        Assert.Equal("Bearer " + RealtimeApp.PlatformKey, session.Headers["Authorization"]);
        Assert.Equal("gpt-realtime-2025-08-28", session.Model);
        Assert.DoesNotContain(session.Headers.Values, v => v.Contains(key, StringComparison.Ordinal));
        Assert.Contains(session.TextEvents, e => e.Contains("Be brief.", StringComparison.Ordinal));
        Assert.Contains(session.Frames, f => f.Type == WebSocketMessageType.Binary && f.Bytes.AsSpan().SequenceEqual(binary));
        await WaitAsync(() => session.ClientClosed);
        await AssertNothingHeldAsync(userId);
        Assert.Equal(0, await UsageRowsAsync(userId));   // no response, nothing billed
    }

    [Fact]
    public async Task Each_response_done_is_settled_exactly_as_one_usage_row()
    {
        app.Upstream.Reset();
        var (key, userId) = await UserAsync(credit: 1_000_000);
        using var socket = await ConnectAsync(key);
        await ReceiveUntilAsync(socket, "session.created");
        for (var i = 0; i < 2; i++)
        {
            var seen = new List<string>();
            await SendAsync(socket, """{"type":"response.create"}""");
            var done = await ReceiveUntilAsync(socket, "response.done", seen);
            Assert.Equal(["response.created", "response.output_text.delta", "response.output_audio.delta", "response.done"], seen);
            Assert.Equal(500, done["response"]!["usage"]!["output_tokens"]!.GetValue<int>());   // relayed unchanged
        }
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, Timeout());
        await AssertNothingHeldAsync(userId);
        await app.WaitForUsageAsync();

        var rows = await app.Database.ScalarAsync<string>(
            $"select string_agg(request_id || '|' || prompt_tokens || '|' || completion_tokens || '|' || cached_tokens || '|' || cost_micros || '|' || estimated, ',' order by request_id) from usage_events where user_id = '{userId}'");
        var parts = rows!.Split(',');
        Assert.Equal(2, parts.Length);
        Assert.EndsWith(":1", parts[0].Split('|')[0], StringComparison.Ordinal);
        Assert.EndsWith(":2", parts[1].Split('|')[0], StringComparison.Ordinal);
        foreach (var row in parts) Assert.Equal($"1200|500|300|{DefaultUsageCost}|false", row[(row.IndexOf('|', StringComparison.Ordinal) + 1)..]);
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(1_000_000 - 2 * DefaultUsageCost, balance);
        Assert.Equal(balance, ledger);
    }

    [Fact]
    public async Task A_browser_authenticates_by_subprotocol_and_only_realtime_is_echoed_back()
    {
        app.Upstream.Reset();
        var (key, userId) = await UserAsync();
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("realtime");
        socket.Options.AddSubProtocol(RealtimeEndpointPrefix + key);
        socket.Options.AddSubProtocol("openai-beta.realtime-v1");
        await socket.ConnectAsync(app.RealtimeUri(RealtimeApp.Model), Timeout());
        Assert.Equal("realtime", socket.SubProtocol);
        await ReceiveUntilAsync(socket, "session.created");
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, Timeout());

        var session = Assert.Single(app.Upstream.Sessions);
        Assert.Equal("Bearer " + RealtimeApp.PlatformKey, session.Headers["Authorization"]);
        Assert.Equal("realtime=v1", session.Headers["OpenAI-Beta"]);
        Assert.False(session.Headers.ContainsKey("Sec-WebSocket-Protocol") && session.Headers["Sec-WebSocket-Protocol"].Contains(key, StringComparison.Ordinal));
        await AssertNothingHeldAsync(userId);
    }

    private const string RealtimeEndpointPrefix = "openai-insecure-api-key.";

    [Fact]
    public async Task A_bad_key_gets_401_before_the_upgrade_and_nothing_reaches_the_provider()
    {
        app.Upstream.Reset();
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer ag_live_notakey");
        socket.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(app.RealtimeUri(RealtimeApp.Model), Timeout()));
        Assert.Equal(HttpStatusCode.Unauthorized, socket.HttpStatusCode);

        using var bySubprotocol = new ClientWebSocket();
        bySubprotocol.Options.AddSubProtocol("realtime");
        bySubprotocol.Options.AddSubProtocol(RealtimeEndpointPrefix + "ag_live_notakey");
        bySubprotocol.Options.CollectHttpResponseDetails = true;
        await Assert.ThrowsAsync<WebSocketException>(() => bySubprotocol.ConnectAsync(app.RealtimeUri(RealtimeApp.Model), Timeout()));
        Assert.Equal(HttpStatusCode.Unauthorized, bySubprotocol.HttpStatusCode);

        using var http = app.Http();
        using var response = await http.GetAsync("/api/v1/realtime?model=" + RealtimeApp.Model);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("invalid_api_key", error["code"]!.GetValue<string>());
        Assert.Empty(app.Upstream.Sessions);
    }

    [Fact]
    public async Task Wrong_model_missing_model_plain_http_and_no_credit_are_refused_before_the_upgrade()
    {
        app.Upstream.Reset();
        var (key, _) = await UserAsync();
        using var http = app.Http();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

        async Task<HttpStatusCode> RefusalAsync(string model, string bearer)
        {
            using var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader("Authorization", "Bearer " + bearer);
            socket.Options.CollectHttpResponseDetails = true;
            await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(app.RealtimeUri(model), Timeout()));
            return socket.HttpStatusCode;
        }

        Assert.Equal(HttpStatusCode.BadRequest, await RefusalAsync(RealtimeApp.ChatModel, key));
        Assert.Equal(HttpStatusCode.NotFound, await RefusalAsync("nope/nothing", key));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await RefusalAsync(RealtimeApp.UnpricedModel, key));   // never served without its audio prices
        using (var missing = await http.GetAsync("/api/v1/realtime"))
            Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        using (var plainGet = await http.GetAsync("/api/v1/realtime?model=" + RealtimeApp.Model))
        {
            Assert.Equal(HttpStatusCode.BadRequest, plainGet.StatusCode);
            Assert.Equal("websocket_required", JsonNode.Parse(await plainGet.Content.ReadAsStringAsync())!["error"]!["code"]!.GetValue<string>());
        }
        var (poorKey, poorUser) = await UserAsync(credit: 0);
        Assert.Equal(HttpStatusCode.PaymentRequired, await RefusalAsync(RealtimeApp.Model, poorKey));
        Assert.Empty(app.Upstream.Sessions);
        await AssertNothingHeldAsync(poorUser);
    }

    [Fact]
    public async Task When_the_balance_cannot_cover_the_next_response_the_session_is_closed_with_an_error_event()
    {
        app.Upstream.Reset();
        // Enough for the first reservation (10,000) but not, after one response (8,500), for another.
        var (key, userId) = await UserAsync(credit: 15_000);
        using var socket = await ConnectAsync(key);
        await ReceiveUntilAsync(socket, "session.created");
        await SendAsync(socket, """{"type":"response.create"}""");
        await ReceiveUntilAsync(socket, "response.done");
        var error = await ReceiveUntilAsync(socket, "error");
        Assert.Equal("insufficient_credits", error["error"]!["code"]!.GetValue<string>());
        await AssertClosedAsync(socket, 1008);

        await WaitAsync(() => Assert.True(Assert.Single(app.Upstream.Sessions).ClientClosed));   // the provider's side is closed too
        await AssertNothingHeldAsync(userId);
        await app.WaitForUsageAsync();
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(15_000 - DefaultUsageCost, balance);
        Assert.Equal(balance, ledger);
        Assert.Equal(1, await UsageRowsAsync(userId));
    }

    [Fact]
    public async Task Revoking_the_key_closes_its_open_session_with_an_error_event()
    {
        app.Upstream.Reset();
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 1_000_000);
        ApiKey apiKey;
        string secret;
        await using (var scope = app.Services.CreateAsyncScope())
            (apiKey, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssueAsync(userId, "rt", new KeyLimits(), CancellationToken.None);
        using var socket = await ConnectAsync(secret);
        await ReceiveUntilAsync(socket, "session.created");

        await using (var scope = app.Services.CreateAsyncScope())
            Assert.True(await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().RevokeAsync(userId, apiKey.Id, CancellationToken.None));
        var error = await ReceiveUntilAsync(socket, "error", seconds: 5);
        Assert.Equal("invalid_api_key", error["error"]!["code"]!.GetValue<string>());
        await AssertClosedAsync(socket, 1008);
        await AssertNothingHeldAsync(userId);
    }

    [Fact]
    public async Task An_idle_session_is_closed_at_the_idle_limit()
    {
        app.Upstream.Reset();
        var (key, userId) = await UserAsync();
        using var socket = await ConnectAsync(key);
        await ReceiveUntilAsync(socket, "session.created");
        var started = DateTime.UtcNow;
        var error = await ReceiveUntilAsync(socket, "error", seconds: 10);
        Assert.Equal("session_idle_timeout", error["error"]!["code"]!.GetValue<string>());
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(2), "closed before the 3 s idle limit");
        await AssertClosedAsync(socket, 4000);
        await AssertNothingHeldAsync(userId);
    }

    [Fact]
    public async Task A_close_from_the_provider_is_passed_on_to_the_client_with_its_code_and_reason()
    {
        app.Upstream.Reset();
        var (key, userId) = await UserAsync();
        using var socket = await ConnectAsync(key);
        await ReceiveUntilAsync(socket, "session.created");
        await Assert.Single(app.Upstream.Sessions).CloseFromProviderAsync(WebSocketCloseStatus.NormalClosure, "Your session hit the maximum duration of 30 minutes.");

        var error = await ReceiveUntilAsync(socket, "error");
        Assert.Equal("session_expired", error["error"]!["code"]!.GetValue<string>());
        await AssertClosedAsync(socket, 1000);
        Assert.Equal("Your session hit the maximum duration of 30 minutes.", socket.CloseStatusDescription);
        await AssertNothingHeldAsync(userId);
    }

    [Fact]
    public async Task A_client_that_leaves_mid_response_pays_the_usage_the_provider_reports_for_the_cancelled_response()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAiRealtime.Behaviour.FinishOnCancel;
        var (key, userId) = await UserAsync(credit: 1_000_000);
        using (var socket = await ConnectAsync(key))
        {
            await ReceiveUntilAsync(socket, "session.created");
            await SendAsync(socket, """{"type":"response.create"}""");
            await ReceiveUntilAsync(socket, "response.output_audio.delta");
            socket.Abort();   // gone without a close
        }
        var session = Assert.Single(app.Upstream.Sessions);
        await WaitAsync(() => session.CancelReceived);
        await AssertNothingHeldAsync(userId);
        await app.WaitForUsageAsync();
        Assert.Equal($"{DefaultUsageCost}|false", await app.Database.ScalarAsync<string>(
            $"select cost_micros || '|' || estimated from usage_events where user_id = '{userId}'"));
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(1_000_000 - DefaultUsageCost, balance);
        Assert.Equal(balance, ledger);
    }

    [Fact]
    public async Task A_response_the_provider_never_reports_is_billed_from_what_was_relayed()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAiRealtime.Behaviour.NeverFinish;
        app.Upstream.AudioBytes = 48_000;   // one second of 24 kHz PCM16: 20 tokens
        var (key, userId) = await UserAsync(credit: 1_000_000);
        using (var socket = await ConnectAsync(key))
        {
            await ReceiveUntilAsync(socket, "session.created");
            await SendAsync(socket, """{"type":"response.create"}""");
            await ReceiveUntilAsync(socket, "response.output_audio.delta");
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, Timeout());
        }
        await AssertNothingHeldAsync(userId);
        await app.WaitForUsageAsync();
        // No earlier response, so no input to carry over; output: "Hello there, friend" (19 bytes → 5 tokens) and 20 audio tokens × 4.
        Assert.Equal($"0|25|{5 + 20 * 4}|true", await app.Database.ScalarAsync<string>(
            $"select prompt_tokens || '|' || completion_tokens || '|' || cost_micros || '|' || estimated from usage_events where user_id = '{userId}'"));
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(balance, ledger);
    }

    [Fact]
    public async Task The_echo_provider_answers_realtime_offline()
    {
        var (key, userId) = await UserAsync(credit: 1_000_000);
        using var socket = await ConnectAsync(key, RealtimeApp.EchoModel);
        await ReceiveUntilAsync(socket, "session.created");
        await SendAsync(socket, """{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"ping"}]}}""");
        await ReceiveUntilAsync(socket, "conversation.item.created");
        await SendAsync(socket, """{"type":"response.create"}""");
        var delta = await ReceiveUntilAsync(socket, "response.output_text.delta");
        Assert.Equal("Echo: ping", delta["delta"]!.GetValue<string>());
        var done = await ReceiveUntilAsync(socket, "response.done");
        Assert.Equal(3, done["response"]!["usage"]!["output_tokens"]!.GetValue<int>());
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, Timeout());
        await AssertNothingHeldAsync(userId);
        await app.WaitForUsageAsync();
        // "ping" is 1 input token, "Echo: ping" 3 output tokens, at 1 µ$ each.
        Assert.Equal("1|3|4", await app.Database.ScalarAsync<string>(
            $"select prompt_tokens || '|' || completion_tokens || '|' || cost_micros from usage_events where user_id = '{userId}'"));
    }

    [Fact]
    public async Task At_shutdown_an_open_session_is_closed_with_an_error_event_and_its_running_response_billed()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAiRealtime.Behaviour.FinishOnCancel;
        var (key, userId) = await UserAsync(credit: 1_000_000);
        // A second instance on the same database whose streams must end as soon as it is told to stop.
        await using var instance = app.WithWebHostBuilder(b => b.UseSetting("Gateway:ShutdownMarginSeconds", "600"));
        instance.UseKestrel(0);
        instance.StartServer();
        var address = instance.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + key);
        await socket.ConnectAsync(new Uri(new Uri(address.Replace("http://", "ws://", StringComparison.Ordinal)), "/api/v1/realtime?model=" + RealtimeApp.Model), Timeout());
        await ReceiveUntilAsync(socket, "session.created");
        await SendAsync(socket, """{"type":"response.create"}""");
        await ReceiveUntilAsync(socket, "response.output_text.delta");
        // Taken before the stop: once it completes, the instance's services are disposed (CI once got there first).
        var leases = instance.Services.GetRequiredService<CreditLeases>();
        var writer = instance.Services.GetRequiredService<UsageWriter>();

        instance.Services.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>().StopApplication();
        var error = await ReceiveUntilAsync(socket, "error", seconds: 10);
        Assert.Equal("server_shutdown", error["error"]!["code"]!.GetValue<string>());
        await AssertClosedAsync(socket, 1001);
        // The relay closes the client first, then cancels the running response upstream and waits for its report.
        await WaitAsync(() => Assert.Single(app.Upstream.Sessions).CancelReceived);

        await WaitAsync(() => leases.InFlight(userId) == 0);
        await WaitAsync(() => writer.Pending == 0);
        await WaitAsync(() => app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'").Result == 1);
        Assert.Equal(DefaultUsageCost, await app.Database.ScalarAsync<long>($"select cost_micros from usage_events where user_id = '{userId}'"));
    }

    [Fact]
    public async Task The_official_OpenAI_SDK_realtime_client_works_against_api_v1_unchanged()
    {
        app.Upstream.Reset();
        var (key, userId) = await UserAsync(credit: 1_000_000);
#pragma warning disable OPENAI002   // the SDK's Realtime client is marked experimental
        var client = new OpenAI.Realtime.RealtimeClient(new System.ClientModel.ApiKeyCredential(key),
            new OpenAI.Realtime.RealtimeClientOptions { Endpoint = new Uri(app.Http().BaseAddress!, "/api/v1") });
        using (var session = await client.StartConversationSessionAsync(RealtimeApp.Model, cancellationToken: Timeout()))
        {
            await session.AddItemAsync(OpenAI.Realtime.RealtimeItem.CreateUserMessageItem("Say hello"), Timeout());
            await session.StartResponseAsync(Timeout());
            OpenAI.Realtime.RealtimeServerUpdateResponseDone? done = null;
            await foreach (var update in session.ReceiveUpdatesAsync(Timeout()))
            {
                if (update is OpenAI.Realtime.RealtimeServerUpdateResponseDone d)
                {
                    done = d;
                    break;
                }
            }
            Assert.Equal("resp_1", done?.Response.Id);
        }
#pragma warning restore OPENAI002
        var upstream = Assert.Single(app.Upstream.Sessions);
        Assert.Equal("Bearer " + RealtimeApp.PlatformKey, upstream.Headers["Authorization"]);
        Assert.Contains(upstream.TextEvents, e => e.Contains("\"conversation.item.create\"", StringComparison.Ordinal) && e.Contains("Say hello", StringComparison.Ordinal));
        await AssertNothingHeldAsync(userId);
        await app.WaitForUsageAsync();
        Assert.Equal(DefaultUsageCost, await app.Database.ScalarAsync<long>($"select cost_micros from usage_events where user_id = '{userId}'"));
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition() && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.True(condition());
    }

    private static async Task WaitAsync(Action assertion)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                assertion();
                return;
            }
            catch (Xunit.Sdk.XunitException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }
    }
}
