using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Core;
using Anthropic.Models.Messages;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/messages</c> through the real app: the official Anthropic .NET SDK unchanged but for its base URL
/// (<c>/api</c>) and key, against an Anthropic route (native: the fake's bytes pass through), an OpenAI-kind route and a
/// Gemini route (translated); raw HTTP for the exact event sequences and Anthropic's error envelope; exact charging.
/// </summary>
public sealed class MessagesEndpointTests(EveryKindApp app) : IClassFixture<EveryKindApp>
{
    private async Task<(HttpClient Client, string Key, Guid UserId)> StartAsync(long creditMicros = 10_000_000)
    {
        app.OpenAi.Reset();
        app.Anthropic.Requests.Clear();
        app.GeminiFake.Requests.Clear();
        var (client, key, userId) = await app.CreateApiClientAsync(creditMicros: creditMicros);
        client.DefaultRequestHeaders.Authorization = null;
        client.DefaultRequestHeaders.Add("x-api-key", key);
        client.DefaultRequestHeaders.Add("anthropic-version", "2023-06-01");
        return (client, key, userId);
    }

    private AnthropicClient Sdk(string key) => new()
    {
        ApiKey = key,
        BaseUrl = new Uri(app.Server.BaseAddress, "/api").ToString().TrimEnd('/'),
        HttpClient = app.CreateClient(),
        MaxRetries = 0,
    };

    private static MessageCreateParams Ask(string model, string text, long maxTokens = 100) => new()
    {
        Model = model,
        MaxTokens = maxTokens,
        Messages = [new UserMessageParam(text)],
    };

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static List<(string Name, JsonNode Data)> Events(string sse)
    {
        var events = new List<(string, JsonNode)>();
        foreach (var block in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            var name = lines.FirstOrDefault(l => l.StartsWith("event: ", StringComparison.Ordinal))?["event: ".Length..] ?? "";
            var data = lines.First(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..];
            events.Add((name, JsonNode.Parse(data)!));
        }
        return events;
    }

    [Fact]
    public async Task The_sdk_gets_claudes_answer_from_an_anthropic_route_and_the_call_is_charged_exactly()
    {
        var (_, key, userId) = await StartAsync();

        var message = await Sdk(key).Messages.Create(Ask(EveryKindApp.MeteredClaude, "hello"));

        Assert.True(message.Content.Single().TryPickText(out var text));
        Assert.Equal("Hello from Claude!", text!.Text);
        Assert.Equal("msg_01XFDUDYJgAACzvnptvVoYEL", message.ID);   // Anthropic's answer as sent
        Assert.Equal(StopReason.EndTurn, message.StopReason!.Value());
        Assert.Equal(25, message.Usage.InputTokens);
        Assert.Equal(100, message.Usage.CacheReadInputTokens);
        Assert.Equal(10, message.Usage.CacheCreationInputTokens);
        Assert.Equal(15, message.Usage.OutputTokens);
        Assert.Empty(app.Violations);
        var upstream = JsonNode.Parse(app.Anthropic.Requests.Single(r => r.PathAndQuery == "/v1/messages").Body)!;
        Assert.Equal("claude-sonnet-4-5", (string)upstream["model"]!);   // rewritten to the upstream model, the rest as sent
        Assert.Equal(100, (long)upstream["max_tokens"]!);

        // Every input token (uncached, cache write, cache read) and the output, at 1 µ$ a token.
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(25 + 10 + 100, row["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(15, row["completion_tokens"]!.GetValue<long>());
        Assert.Equal(100, row["cached_tokens"]!.GetValue<long>());
        Assert.False(row["estimated"]!.GetValue<bool>());
        Assert.Equal(150, row["cost_micros"]!.GetValue<long>());
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - 150);
    }

    [Fact]
    public async Task The_sdk_streams_claudes_answer_from_an_anthropic_route()
    {
        var (_, key, userId) = await StartAsync();
        var text = new StringBuilder();
        long? output = null;

        await foreach (var streamEvent in Sdk(key).Messages.CreateStreaming(Ask(EveryKindApp.MeteredClaude, "hello")))
        {
            if (streamEvent.TryPickContentBlockDelta(out var delta) && delta!.Delta.TryPickText(out var t)) text.Append(t!.Text);
            if (streamEvent.TryPickDelta(out var messageDelta)) output = messageDelta!.Usage.OutputTokens;
        }

        Assert.Equal("Hello from \"Claude\"!", text.ToString());
        Assert.Equal(15, output);
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(135, row["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(15, row["completion_tokens"]!.GetValue<long>());
        Assert.True(row["streamed"]!.GetValue<bool>());
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - 150);
    }

    [Fact]
    public async Task An_anthropic_answer_reaches_the_client_byte_for_byte_with_its_cost_in_a_header()
    {
        var (client, _, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/messages",
            Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":100,"messages":[{"role":"user","content":"hello"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(FakeAnthropic.TextMessage, await response.Content.ReadAsStringAsync());
        Assert.Equal("0.00015", response.Headers.GetValues("X-AiGate-Cost-Usd").Single());
        Assert.Equal("anthropic", response.Headers.GetValues("X-AiGate-Provider").Single());
    }

    [Fact]
    public async Task An_anthropic_stream_reaches_the_client_byte_for_byte()
    {
        var (client, _, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/messages",
            Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(FakeAnthropic.TextStream, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_anthropic_error_event_mid_stream_is_passed_on_and_what_was_produced_is_billed()
    {
        var (client, _, userId) = await StartAsync();

        var response = await client.PostAsync("/api/v1/messages",
            Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"MIDSTREAM ERROR"}]}"""));

        Assert.Equal(FakeAnthropic.ErrorStream, await response.Content.ReadAsStringAsync());
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(30, row["prompt_tokens"]!.GetValue<long>());
        Assert.True(row["completion_tokens"]!.GetValue<long>() >= 8, "the partial answer's tokens are billed");
    }

    [Theory]
    [InlineData(StreamBillingApp.Gpt, "Hello from the fake upstream", 11, 7, 0)]
    [InlineData(EveryKindApp.MeteredGemini, "Hello from Gemini!", 40, 35, 16)]
    public async Task The_sdk_gets_a_translated_answer_from_an_openai_or_gemini_route(string model, string reply, long prompt, long output, long cached)
    {
        var (_, key, userId) = await StartAsync();

        var message = await Sdk(key).Messages.Create(new MessageCreateParams
        {
            Model = model,
            MaxTokens = 100,
            System = "Be brief.",
            Messages = [new UserMessageParam("hello")],
        });

        Assert.True(message.Content.Single().TryPickText(out var text));
        Assert.Equal(reply, text!.Text);
        Assert.Equal(StopReason.EndTurn, message.StopReason!.Value());
        Assert.Equal(model, message.Model.Raw());
        Assert.Equal(prompt - cached, message.Usage.InputTokens);
        Assert.Equal(cached, message.Usage.CacheReadInputTokens);
        Assert.Equal(output, message.Usage.OutputTokens);   // Gemini: 5 candidates + 30 thinking tokens
        Assert.Empty(app.Violations);
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(prompt, row["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(output, row["completion_tokens"]!.GetValue<long>());
        var cost = row["cost_micros"]!.GetValue<long>();
        if (model == EveryKindApp.MeteredGemini) Assert.Equal(prompt + output, cost);
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - cost);
    }

    [Theory]
    [InlineData(StreamBillingApp.Gpt, "Hello from the fake upstream", 7)]
    [InlineData(EveryKindApp.MeteredGemini, "Hello from \"Gemini\"!", 35)]
    public async Task The_sdk_streams_a_translated_answer_from_an_openai_or_gemini_route(string model, string reply, long output)
    {
        var (_, key, userId) = await StartAsync();
        var text = new StringBuilder();
        long? reportedOutput = null;
        ApiEnum<string, StopReason>? stop = null;

        await foreach (var streamEvent in Sdk(key).Messages.CreateStreaming(Ask(model, "hello")))
        {
            if (streamEvent.TryPickContentBlockDelta(out var delta) && delta!.Delta.TryPickText(out var t)) text.Append(t!.Text);
            if (streamEvent.TryPickDelta(out var messageDelta))
            {
                reportedOutput = messageDelta!.Usage.OutputTokens;
                stop = messageDelta.Delta.StopReason;
            }
        }

        Assert.Equal(reply, text.ToString());
        Assert.Equal(output, reportedOutput);
        Assert.Equal(StopReason.EndTurn, stop!.Value());
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(output, row["completion_tokens"]!.GetValue<long>());
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - row["cost_micros"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_translated_stream_follows_anthropics_event_sequence()
    {
        var (client, _, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/messages",
            Body($$"""{"model":"{{StreamBillingApp.Gpt}}","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello"}]}"""));

        var events = Events(await response.Content.ReadAsStringAsync());
        var words = "Hello from the fake upstream".Split(' ').Length;
        string[] expected = ["message_start", "ping", "content_block_start", .. Enumerable.Repeat("content_block_delta", words), "content_block_stop", "message_delta", "message_stop"];
        Assert.Equal(expected, events.Select(e => e.Name));
        Assert.All(events, e => Assert.Equal(e.Name, (string)e.Data["type"]!));
        Assert.Equal("text", (string)events[2].Data["content_block"]!["type"]!);
        Assert.Equal("end_turn", (string)events[^2].Data["delta"]!["stop_reason"]!);
        Assert.Equal(7, (long)events[^2].Data["usage"]!["output_tokens"]!);
        Assert.Equal(11, (long)events[^2].Data["usage"]!["input_tokens"]!);
    }

    [Fact]
    public async Task Tools_translate_both_ways_for_a_gemini_route()
    {
        var (client, _, _) = await StartAsync();
        const string tools = """[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]""";

        var first = JsonNode.Parse(await (await client.PostAsync("/api/v1/messages",
            Body($$"""{"model":"{{EveryKindApp.MeteredGemini}}","max_tokens":100,"tools":{{tools}},"tool_choice":{"type":"auto"},"messages":[{"role":"user","content":"TOOLS please"}]}"""))).Content.ReadAsStringAsync())!;

        Assert.Equal("tool_use", (string)first["stop_reason"]!);
        var toolUse = first["content"]!.AsArray().Single(b => (string)b!["type"]! == "tool_use")!;
        Assert.Equal("get_weather", (string)toolUse["name"]!);
        Assert.Equal("""{"city":"Paris"}""", toolUse["input"]!.ToJsonString());

        // The tool's result goes back as a tool_result block, with an image beside it.
        var id = (string)toolUse["id"]!;
        var second = await client.PostAsync("/api/v1/messages", Body($$$"""
            {"model":"{{{EveryKindApp.MeteredGemini}}}","max_tokens":100,"tools":{{{tools}}},"messages":[
              {"role":"user","content":"TOOLS please"},
              {"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"{{{id}}}","name":"get_weather","input":{"city":"Paris"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"{{{id}}}","content":[{"type":"text","text":"sunny"}]},
                {"type":"text","text":"thanks"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]}
            """));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Empty(app.Violations);
        var sent = JsonNode.Parse(app.GeminiFake.Requests.Last().Body)!;
        var contents = sent["contents"]!.AsArray();
        Assert.Equal("get_weather", (string)contents[1]!["parts"]![1]!["functionCall"]!["name"]!);
        Assert.Equal("""{"content":"sunny"}""", contents[2]!["parts"]![0]!["functionResponse"]!["response"]!.ToJsonString());
        Assert.Equal("image/png", (string)contents[2]!["parts"]![2]!["inlineData"]!["mimeType"]!);
    }

    [Fact]
    public async Task A_translated_tool_call_streams_as_a_tool_use_block()
    {
        var (client, _, _) = await StartAsync();

        const string tools = """[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]""";
        var response = await client.PostAsync("/api/v1/messages", Body($$"""
            {"model":"{{EveryKindApp.MeteredGemini}}","max_tokens":100,"stream":true,"tools":{{tools}},"messages":[{"role":"user","content":"TOOLS please"}]}
            """));

        var events = Events(await response.Content.ReadAsStringAsync());
        Assert.Equal(["message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
            events.Select(e => e.Name));
        var block = events[2].Data["content_block"]!;
        Assert.Equal("tool_use", (string)block["type"]!);
        Assert.Equal("get_weather", (string)block["name"]!);
        Assert.StartsWith("call_", (string)block["id"]!);
        Assert.Equal("input_json_delta", (string)events[3].Data["delta"]!["type"]!);
        Assert.Equal("""{"city": "Paris"}""", (string)events[3].Data["delta"]!["partial_json"]!);   // the args as Gemini wrote them
        Assert.Equal("tool_use", (string)events[5].Data["delta"]!["stop_reason"]!);
        Assert.Equal(15, (long)events[5].Data["usage"]!["output_tokens"]!);
        Assert.Empty(app.Violations);
    }

    [Fact]
    public async Task Tools_stream_natively_from_an_anthropic_route_with_the_sdk()
    {
        var (_, key, _) = await StartAsync();
        var json = new StringBuilder();
        string? toolName = null;

        await foreach (var streamEvent in Sdk(key).Messages.CreateStreaming(new MessageCreateParams
        {
            Model = EveryKindApp.MeteredClaude,
            MaxTokens = 200,
            Messages = [new UserMessageParam("TOOLS please")],
            Tools = [new Tool { Name = "get_weather", InputSchema = new InputSchema { Properties = new Dictionary<string, System.Text.Json.JsonElement>() } }],
        }))
        {
            if (streamEvent.TryPickContentBlockStart(out var start) && start!.ContentBlock.TryPickToolUse(out var tool)) toolName = tool!.Name;
            if (streamEvent.TryPickContentBlockDelta(out var delta) && delta!.Delta.TryPickInputJson(out var input)) json.Append(input!.PartialJson);
        }

        Assert.Equal("get_weather", toolName);
        Assert.Equal("""{"city": "Paris"}""", json.ToString());
        Assert.Empty(app.Violations);
    }

    [Fact]
    public async Task Errors_come_in_anthropics_envelope_with_its_status_codes()
    {
        var (client, key, _) = await StartAsync();
        using var anonymous = app.CreateClient();
        var body = $$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""";

        async Task AssertError(HttpResponseMessage response, HttpStatusCode status, string type)
        {
            Assert.Equal(status, response.StatusCode);
            var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal("error", (string)error["type"]!);
            Assert.Equal(type, (string)error["error"]!["type"]!);
            Assert.False(string.IsNullOrEmpty((string)error["error"]!["message"]!));
        }

        await AssertError(await anonymous.PostAsync("/api/v1/messages", Body(body)), HttpStatusCode.Unauthorized, "authentication_error");
        using var badKey = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messages") { Content = Body(body) };
        badKey.Headers.Add("x-api-key", "sk-aigate-not-a-real-key");
        await AssertError(await anonymous.SendAsync(badKey), HttpStatusCode.Unauthorized, "authentication_error");
        await AssertError(await client.PostAsync("/api/v1/messages", Body("{not json")), HttpStatusCode.BadRequest, "invalid_request_error");
        await AssertError(await client.PostAsync("/api/v1/messages", Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","messages":[{"role":"user","content":"hi"}]}""")),
            HttpStatusCode.BadRequest, "invalid_request_error");   // no max_tokens
        await AssertError(await client.PostAsync("/api/v1/messages", Body("""{"model":"nobody/none","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}""")),
            HttpStatusCode.NotFound, "not_found_error");
        await AssertError(await client.PostAsync("/api/v1/messages", Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":10,"messages":[{"role":"system","content":"hi"}]}""")),
            HttpStatusCode.BadRequest, "invalid_request_error");
        // Documents have no chat-completions equivalent: a clear 400 for an OpenAI-kind model, before anything is reserved or sent.
        await AssertError(await client.PostAsync("/api/v1/messages", Body($$$"""
            {"model":"{{{StreamBillingApp.Gpt}}}","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]}
            """)), HttpStatusCode.BadRequest, "invalid_request_error");
        // An upstream refusal keeps its status and message.
        var rejected = await client.PostAsync("/api/v1/messages", Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":10,"messages":[{"role":"user","content":"BAD REQUEST"}]}"""));
        await AssertError(rejected, HttpStatusCode.BadRequest, "invalid_request_error");
        Assert.Equal(0, app.OpenAi.ChatRequests);

        // The SDK turns them into its exceptions.
        await Assert.ThrowsAnyAsync<Anthropic.Exceptions.AnthropicException>(() => Sdk("sk-aigate-wrong").Messages.Create(Ask(EveryKindApp.MeteredClaude, "hi")));
        await Assert.ThrowsAnyAsync<Anthropic.Exceptions.AnthropicException>(() => Sdk(key).Messages.Create(Ask("nobody/none", "hi")));
    }

    [Fact]
    public async Task Features_priced_outside_the_usage_are_refused_before_anything_goes_to_anthropic()
    {
        var (client, _, userId) = await StartAsync();
        var serverTool = Body($$"""
            {"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":100,"messages":[{"role":"user","content":"hi"}],
             "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}]}
            """);
        using var longContext = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messages")
        {
            Content = Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"""),
        };
        longContext.Headers.Add("anthropic-beta", "context-1m-2025-08-07");
        // A one-hour cache write costs Anthropic's 2× input rate, which the usage does not tell apart from a 5-minute one.
        var hourCache = Body($$$"""
            {"model":"{{{EveryKindApp.MeteredClaude}}}","max_tokens":100,
             "system":[{"type":"text","text":"a long shared prefix","cache_control":{"type":"ephemeral","ttl":"1h"}}],
             "messages":[{"role":"user","content":"hi"}]}
            """);

        foreach (var response in new[] { await client.PostAsync("/api/v1/messages", serverTool), await client.SendAsync(longContext),
                     await client.PostAsync("/api/v1/messages", hourCache) })
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Equal("invalid_request_error", (string)error["error"]!["type"]!);
            Assert.Contains("/api/v1/messages", (string)error["error"]!["message"]!);
        }
        Assert.DoesNotContain(app.Anthropic.Requests, r => r.PathAndQuery == "/v1/messages");
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000);
    }

    [Fact]
    public async Task Insufficient_credit_is_refused_before_anything_goes_upstream()
    {
        var (client, _, userId) = await StartAsync(creditMicros: 50);

        var response = await client.PostAsync("/api/v1/messages",
            Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":1000,"messages":[{"role":"user","content":"hello"}]}"""));

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("billing_error", (string)error["error"]!["type"]!);
        Assert.DoesNotContain(app.Anthropic.Requests, r => r.PathAndQuery == "/v1/messages");
        await app.AssertLedgerMatchesBalanceAsync(userId, 50);
    }

    [Fact]
    public async Task A_client_that_leaves_a_native_stream_pays_for_what_was_produced()
    {
        var (client, _, userId) = await StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/messages")
        {
            Content = Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"LONG answer, BRISK"}]}"""),
        };
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var textDeltas = 0;
        while (textDeltas < 10 && await reader.ReadLineAsync() is { } line)
            if (line.Contains("\"text_delta\"", StringComparison.Ordinal)) textDeltas++;
        response.Dispose();   // the client leaves

        var row = await app.UsageRowAsync(userId);
        Assert.Equal(25, row["prompt_tokens"]!.GetValue<long>());
        Assert.True(row["completion_tokens"]!.GetValue<long>() >= 10, "at least the text that went out is billed");
        var cost = row["cost_micros"]!.GetValue<long>();
        Assert.Equal(row["prompt_tokens"]!.GetValue<long>() + row["completion_tokens"]!.GetValue<long>(), cost);
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - cost);
    }

    [Fact]
    public async Task Count_tokens_answers_our_count_for_free()
    {
        var (client, key, userId) = await StartAsync();
        const string prompt = "How many tokens are in this sentence, counted the way the gateway counts them?";

        var response = await client.PostAsync("/api/v1/messages/count_tokens",
            Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","system":"Be brief.","messages":[{"role":"user","content":"{{prompt}}"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var counted = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var cl100k = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("cl100k_base");
        // Our framing: 3 to prime the reply, 4 a message, and the text of each.
        Assert.Equal(3 + 4 + cl100k.CountTokens("Be brief.") + 4 + cl100k.CountTokens(prompt), (long)counted["input_tokens"]!);
        var sdkCount = await Sdk(key).Messages.CountTokens(new MessageCountTokensParams
        {
            Model = EveryKindApp.MeteredClaude,
            Messages = [new UserMessageParam(prompt)],
        });
        Assert.True(sdkCount.InputTokens > 0);
        Assert.DoesNotContain(app.Anthropic.Requests, r => r.PathAndQuery.StartsWith("/v1/messages", StringComparison.Ordinal));
        await app.WaitForUsageAsync();
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000);
    }

    [Fact]
    public async Task The_echo_provider_answers_messages_for_local_development()
    {
        var (_, key, _) = await StartAsync();

        var message = await Sdk(key).Messages.Create(Ask("echo/echo-1", "hello gateway"));

        Assert.True(message.Content.Single().TryPickText(out var text));
        Assert.Equal("Echo: hello gateway", text!.Text);
        Assert.Equal(5, message.Usage.OutputTokens);
    }

    [Fact]
    public async Task A_bearer_key_works_too()
    {
        var (_, key, _) = await StartAsync();
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

        var response = await client.PostAsync("/api/v1/messages", Body("""{"model":"echo/echo-1","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("message", (string)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["type"]!);
    }

    [Theory]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"metadata":"not an object","messages":[{"role":"user","content":"hi"}]}""", 200)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":["odd"]}]}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"system":["not a block"],"messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":42}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":[{"text":"no type"}]}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":"ten","messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":100000,"messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"tools":{"name":"f"},"messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"tool_choice":"auto","messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"stream":"yes","messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"temperature":1.5,"messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""{"model":"test/gemini-metered","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f1"}}]}]}""", 400)]
    [InlineData("""{"model":"test/gpt-4o-mini","max_tokens":10,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"hi"}]}""", 400)]
    [InlineData("""[1,2,3]""", 400)]
    public async Task Odd_bodies_get_an_anthropic_400_or_an_answer_never_a_500(string body, int status)
    {
        var (client, _, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/messages", Body(body));

        Assert.Equal(status, (int)response.StatusCode);
        var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(status == 200 ? "message" : "error", (string)json["type"]!);
        if (status != 200) Assert.Equal("invalid_request_error", (string)json["error"]!["type"]!);
        Assert.Equal(0, app.OpenAi.Requests.Count(r => r.PathAndQuery == "/v1/chat/completions") - (status == 200 ? 1 : 0));
    }
}
