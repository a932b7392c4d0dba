using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.Tokenizers;
using OpenAI;
using OpenAI.Responses;

#pragma warning disable OPENAI001   // the SDK marks its Responses client experimental

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// <see cref="EveryKindApp"/> where the OpenAI fake serves the Responses API natively (<c>Providers:fake:ResponsesApi</c>),
/// plus an OpenAI-compatible provider on the same fake that does not (<see cref="Compat"/>: translated through chat).
/// </summary>
public sealed class ResponsesApp : EveryKindApp
{
    public const string Compat = "test/compat-metered";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Providers:fake:ResponsesApi"] = "true",
        ["Providers:compat:Kind"] = "openai", ["Providers:compat:BaseUrl"] = OpenAi.BaseUrl.ToString(), ["Providers:compat:ApiKey"] = "sk-compat",
        ["Providers:compat:StreamIdleSeconds"] = "2",
    };

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(Compat, "Compat metered", "compat", "up-model-a", ownedBy: "openai", maxOutputTokens: 4096);
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }
}

/// <summary>
/// <c>POST /api/v1/responses</c> through the real app: the official OpenAI .NET SDK 2.15.0 (<see cref="ResponsesClient"/>)
/// unchanged but for its endpoint, streamed and not, against every provider kind (OpenAI serving the Responses API
/// natively, an OpenAI-compatible server, Anthropic, Gemini and echo translated through chat); raw HTTP for the event
/// sequence, the errors in OpenAI's envelope and what reaches the upstream; exact charging and the client that leaves.
/// </summary>
public sealed class ResponsesEndpointTests(ResponsesApp app) : IClassFixture<ResponsesApp>
{
    private static readonly Tokenizer O200k = TiktokenTokenizer.CreateForEncoding("o200k_base");
    private const string Echo = "echo/echo-1";

    /// <summary>Each kind's model, its reply (JSON, then streamed) and the usage its fake reports (null: echo, which counts bytes).</summary>
    public static TheoryData<string, string, string, string, int, int, int> Kinds => new()
    {
        { "native", StreamBillingApp.Gpt, "Hello from the fake upstream", "Hello from the fake upstream", 11, 7, 0 },
        { "compat", ResponsesApp.Compat, "Hello from the fake upstream", "Hello from the fake upstream", 11, 7, 0 },
        { "anthropic", EveryKindApp.MeteredClaude, "Hello from Claude!", "Hello from \"Claude\"!", 135, 15, 100 },
        { "gemini", EveryKindApp.MeteredGemini, "Hello from Gemini!", "Hello from \"Gemini\"!", 40, 35, 16 },
        { "echo", Echo, "Echo: hello", "Echo: hello", -1, -1, 0 },
    };

    private async Task<(HttpClient Client, string Key, Guid UserId)> StartAsync(long creditMicros = 10_000_000)
    {
        app.OpenAi.Reset();
        app.OpenAi.Reply = "Hello from the fake upstream";
        app.Anthropic.Requests.Clear();
        app.GeminiFake.Requests.Clear();
        return await app.CreateApiClientAsync(creditMicros: creditMicros);
    }

    private ResponsesClient Sdk(string key) => new(new ApiKeyCredential(key), new ResponsesClientOptions
    {
        Endpoint = new Uri(app.Server.BaseAddress, "/api/v1"),
        Transport = new HttpClientPipelineTransport(app.CreateClient()),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
    });

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

    /// <summary>The usage row matches what the client was told, and the ledger what the row cost.</summary>
    private async Task AssertChargedAsync(Guid userId, ResponseTokenUsage usage, int prompt, int output, int cached, bool streamed)
    {
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(usage.InputTokenCount, row["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(usage.OutputTokenCount, row["completion_tokens"]!.GetValue<long>());
        Assert.Equal(streamed, row["streamed"]!.GetValue<bool>());
        Assert.False(row["estimated"]!.GetValue<bool>());
        if (prompt >= 0)
        {
            // The provider's report, exactly, at 1 µ$ a token.
            Assert.Equal(prompt, usage.InputTokenCount);
            Assert.Equal(output, usage.OutputTokenCount);
            Assert.Equal(cached, usage.InputTokenDetails.CachedTokenCount);
            Assert.Equal(prompt + output, row["cost_micros"]!.GetValue<long>());
        }
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - row["cost_micros"]!.GetValue<long>());
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task The_sdk_gets_a_response_from_every_provider_kind_and_the_call_is_charged_exactly(
        string kind, string model, string reply, string _, int prompt, int output, int cached)
    {
        var (_, key, userId) = await StartAsync();

        var response = (await Sdk(key).CreateResponseAsync(new CreateResponseOptions(model, [ResponseItem.CreateUserMessageItem("hello")])
        {
            Instructions = "Be brief.",
            MaxOutputTokenCount = 100,
            Metadata = { ["ticket"] = "T-1" },
        })).Value;

        Assert.Equal(reply, response.GetOutputText());
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.Equal("T-1", response.Metadata["ticket"]);
        Assert.StartsWith("resp_", response.Id, StringComparison.Ordinal);
        if (kind == "native") Assert.Equal("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", response.Id);   // the provider's own
        Assert.Equal(model, response.Model);
        Assert.Empty(app.Violations);
        if (kind == "native")
        {
            var upstream = JsonNode.Parse(app.OpenAi.Requests.Single(r => r.PathAndQuery == "/v1/responses").Body)!;
            Assert.Equal("gpt-4o-mini", (string)upstream["model"]!);
            Assert.False((bool)upstream["store"]!);   // nothing kept under the platform's key
            Assert.Equal(100, (int)upstream["max_output_tokens"]!);
            Assert.Equal("Be brief.", (string)upstream["instructions"]!);
            Assert.Equal(0, app.OpenAi.ChatRequests);
        }
        if (kind == "compat")
        {
            var upstream = JsonNode.Parse(app.OpenAi.Requests.Single(r => r.PathAndQuery == "/v1/chat/completions").Body)!;
            Assert.Equal("up-model-a", (string)upstream["model"]!);
            Assert.Equal("system", (string)upstream["messages"]![0]!["role"]!);
            Assert.Equal(0, app.OpenAi.ResponsesRequests);
        }
        await AssertChargedAsync(userId, response.Usage, prompt, output, cached, streamed: false);
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task The_sdk_streams_a_response_from_every_provider_kind_and_the_call_is_charged_exactly(
        string kind, string model, string _, string reply, int prompt, int output, int cached)
    {
        var (_, key, userId) = await StartAsync();
        var text = new StringBuilder();
        ResponseResult? completed = null;
        var sequence = new List<int>();

        await foreach (var update in await Sdk(key).CreateResponseStreamingAsync(model, "hello"))
        {
            sequence.Add(update.SequenceNumber);
            if (update is StreamingResponseOutputTextDeltaUpdate delta) text.Append(delta.Delta);
            if (update is StreamingResponseCompletedUpdate done) completed = done.Response;
        }

        Assert.Equal(reply, text.ToString());
        Assert.NotNull(completed);
        Assert.Equal(reply, completed.GetOutputText());
        Assert.Equal(Enumerable.Range(0, sequence.Count), sequence);
        Assert.Equal(kind == "native" ? 1 : 0, app.OpenAi.ResponsesRequests);
        await AssertChargedAsync(userId, completed.Usage, prompt, output, cached, streamed: true);
    }

    [Fact]
    public async Task A_translated_stream_sends_openais_event_sequence_with_the_usage_and_cost_billed()
    {
        var (client, _, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/responses",
            Body($$"""{"model":"{{ResponsesApp.Compat}}","stream":true,"input":[{"role":"user","content":[{"type":"input_text","text":"hello"}]}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("[DONE]", body, StringComparison.Ordinal);
        var events = Events(body);
        var words = "Hello from the fake upstream".Split(' ').Length;
        string[] expected =
        [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            .. Enumerable.Repeat("response.output_text.delta", words),
            "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
        ];
        Assert.Equal(expected, events.Select(e => e.Name));
        for (var i = 0; i < events.Count; i++)
        {
            Assert.Equal(events[i].Name, (string)events[i].Data["type"]!);
            Assert.Equal(i, (int)events[i].Data["sequence_number"]!);
        }
        var itemId = (string)events[2].Data["item"]!["id"]!;
        Assert.All(events.Where(e => e.Name.Contains("text", StringComparison.Ordinal) || e.Name.Contains("part", StringComparison.Ordinal)),
            e => Assert.Equal(itemId, (string)e.Data["item_id"]!));
        Assert.Equal("Hello from the fake upstream", (string)events[^4].Data["text"]!);
        var final = events[^1].Data["response"]!;
        Assert.Equal("completed", (string)final["status"]!);
        Assert.False((bool)final["store"]!);
        Assert.Equal("Hello from the fake upstream", (string)final["output"]![0]!["content"]![0]!["text"]!);
        Assert.Equal(11, (int)final["usage"]!["input_tokens"]!);
        Assert.Equal(7, (int)final["usage"]!["output_tokens"]!);
        Assert.Equal(0.000018m, (decimal)final["usage"]!["cost"]!);
    }

    [Fact]
    public async Task A_native_stream_reaches_the_client_as_the_provider_sent_it()
    {
        var (client, _, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/responses",
            Body($$"""{"model":"{{StreamBillingApp.Gpt}}","stream":true,"input":"hello","metadata":{"a":"b"} }"""));

        var events = Events(await response.Content.ReadAsStringAsync());
        Assert.Equal("response.created", events[0].Name);
        Assert.Equal("response.completed", events[^1].Name);
        Assert.Equal("gpt-4o-mini-2024-07-18", (string)events[^1].Data["response"]!["model"]!);   // the provider's own bytes
        Assert.Equal("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", (string)events[0].Data["response"]!["id"]!);
        Assert.Equal("fake", response.Headers.GetValues("X-AiGate-Provider").Single());
    }

    [Fact]
    public async Task Function_tools_are_translated_both_ways_for_a_claude_model()
    {
        var (client, _, _) = await StartAsync();
        const string tools = """[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]""";

        var json = (await (await client.PostAsync("/api/v1/responses",
            Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","input":"TOOLS please","tools":""" + tools + "}"))).Content.ReadFromJsonAsync<JsonObject>())!;
        var call = json["output"]!.AsArray().Single(i => (string)i!["type"]! == "function_call")!;
        Assert.Equal("get_weather", (string)call["name"]!);
        Assert.Equal("toolu_01A09q90qw90lq917835lq9", (string)call["call_id"]!);
        Assert.Equal("Paris", (string)JsonNode.Parse((string)call["arguments"]!)!["city"]!);
        var upstream = JsonNode.Parse(app.Anthropic.Requests.Last(r => r.PathAndQuery == "/v1/messages").Body)!;
        Assert.Equal("get_weather", (string)upstream["tools"]![0]!["name"]!);

        var stream = await (await client.PostAsync("/api/v1/responses",
            Body($$"""{"model":"{{EveryKindApp.MeteredClaude}}","stream":true,"input":"TOOLS please","tools":""" + tools + "}"))).Content.ReadAsStringAsync();
        var events = Events(stream);
        Assert.Contains(events, e => e.Name == "response.function_call_arguments.delta");
        var done = events.Single(e => e.Name == "response.function_call_arguments.done").Data;
        Assert.Equal("get_weather", (string)done["name"]!);
        JsonNode.Parse((string)done["arguments"]!);   // the deltas add up to the whole JSON
        var output = events[^1].Data["response"]!["output"]!.AsArray();
        Assert.Equal(["message", "function_call"], output.Select(i => (string)i!["type"]!));
        Assert.Equal("response.completed", events[^1].Name);
    }

    private const string TinyPng = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    [Theory]
    [InlineData(EveryKindApp.MeteredClaude, "\"type\":\"image\"")]
    [InlineData(EveryKindApp.MeteredGemini, "\"inlineData\"")]
    [InlineData(StreamBillingApp.Gpt, "\"input_image\"")]
    public async Task An_input_image_is_reserved_at_its_worst_case_and_reaches_the_provider_in_its_own_format(string model, string upstreamShape)
    {
        var (poor, _, _) = await StartAsync(creditMicros: 3_000);
        var image = $$"""
            {"model":"{{model}}","max_output_tokens":50,"input":[{"role":"user","content":[
              {"type":"input_text","text":"describe the picture"},{"type":"input_image","image_url":"{{TinyPng}}"}]}]}
            """;
        var text = $$"""{"model":"{{model}}","max_output_tokens":50,"input":"describe the picture"}""";
        Assert.Equal(HttpStatusCode.OK, (await poor.PostAsync("/api/v1/responses", Body(text))).StatusCode);
        var refused = await poor.PostAsync("/api/v1/responses", Body(image));
        Assert.True(refused.StatusCode == HttpStatusCode.PaymentRequired, await refused.Content.ReadAsStringAsync());   // 4,500 tokens for the image > 3,000 µ$

        var (rich, _, _) = await StartAsync();
        var served = await rich.PostAsync("/api/v1/responses", Body(image));
        Assert.True(served.StatusCode == HttpStatusCode.OK, await served.Content.ReadAsStringAsync());
        var forwarded = (app.OpenAi.Requests.Select(r => r.Body).Concat(app.Anthropic.Requests.Select(r => r.Body)).Concat(app.GeminiFake.Requests.Select(r => r.Body)))
            .Single(b => b.Contains("describe the picture", StringComparison.Ordinal));
        Assert.Contains(upstreamShape, JsonNode.Parse(forwarded)!.ToJsonString(), StringComparison.Ordinal);
        Assert.Empty(app.Violations);
    }

    [Theory]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","previous_response_id":"resp_123"}""", "previous_response_id")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","store":true}""", "store")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","background":true}""", "background")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":42}""", "input")]
    [InlineData("""{"model":"test/gpt-4o-mini"}""", "input")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":[{"role":"user","content":[{"text":"no type"}]}]}""", "input[0].content[0]")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":[{"role":"robot","content":"hi"}]}""", "input[0].role")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","max_output_tokens":"lots"}""", "max_output_tokens")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","max_output_tokens":999999}""", "max_output_tokens")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","temperature":7}""", "temperature")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","metadata":{"n":1}}""", "metadata")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","text":true}""", "text")]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","text":{"format":"json"}}""", "text")]
    [InlineData("""{"model":"test/claude-metered","input":"hi","tools":[{"type":"web_search"}]}""", null)]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","tools":[{"type":"web_search_preview"}]}""", null)]
    [InlineData("""{"model":"test/gpt-4o-mini","input":"hi","tools":[{"type":"image_generation"}]}""", null)]
    [InlineData("""{"input":"hi"}""", "model")]
    public async Task Bad_requests_get_a_400_in_openais_envelope_naming_the_parameter_and_nothing_goes_upstream(string json, string? param)
    {
        var (client, _, userId) = await StartAsync();

        var response = await client.PostAsync("/api/v1/responses", Body(json));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("invalid_request_error", (string)error["type"]!);
        Assert.False(string.IsNullOrWhiteSpace((string)error["message"]!));
        Assert.Equal(param, (string?)error["param"]);
        Assert.Empty(app.OpenAi.Requests);
        Assert.Empty(app.Anthropic.Requests);
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
    }

    [Fact]
    public async Task The_sdk_sees_previous_response_id_refused_and_a_stored_response_cannot_be_fetched()
    {
        var (client, key, _) = await StartAsync();

        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(key).CreateResponseAsync(StreamBillingApp.Gpt, "hi", previousResponseId: "resp_1"));
        Assert.Equal(400, refused.Status);
        Assert.Contains("previous_response_id", refused.Message, StringComparison.Ordinal);

        var fetch = await client.GetAsync("/api/v1/responses/resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b");
        Assert.Equal(HttpStatusCode.BadRequest, fetch.StatusCode);
        Assert.Equal("response_not_stored", (string)(await fetch.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!);
        Assert.Empty(app.OpenAi.Requests);
    }

    [Fact]
    public async Task An_unknown_model_is_a_404_model_not_found()
    {
        var (client, _, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/responses", Body("""{"model":"nope/none","input":"hi"}"""));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model_not_found", (string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!);
    }

    [Theory]
    [InlineData(StreamBillingApp.Gpt)]
    [InlineData(EveryKindApp.MeteredClaude)]
    public async Task Insufficient_credit_is_refused_before_anything_goes_upstream(string model)
    {
        var (client, _, userId) = await StartAsync(creditMicros: 500);

        // 1,000 output tokens at 1 µ$ each cannot be covered by 500 µ$.
        var response = await client.PostAsync("/api/v1/responses", Body($$"""{"model":"{{model}}","input":"hi","max_output_tokens":1000}"""));

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.Equal("insufficient_credits", (string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!);
        Assert.Empty(app.OpenAi.Requests);
        Assert.Empty(app.Anthropic.Requests);
        await app.AssertLedgerMatchesBalanceAsync(userId, 500);
    }

    [Theory]
    [InlineData(StreamBillingApp.Gpt)]
    [InlineData(ResponsesApp.Compat)]
    public async Task A_client_that_leaves_half_way_pays_for_the_text_it_was_sent(string model)
    {
        var (client, _, userId) = await StartAsync();
        app.OpenAi.Mode = FakeOpenAi.Behaviour.StallHalfway;
        app.OpenAi.Reply = LongReply.Text;
        var words = LongReply.Text.Split(' ');
        var half = string.Join(' ', words.Take(words.Length / 2));

        var received = new StringBuilder();
        using (var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/responses")
               {
                   Content = Body($$"""{"model":"{{model}}","stream":true,"max_output_tokens":2000,"input":"Write something LONG please"}"""),
               }, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (received.Length < half.Length && await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                var data = JsonNode.Parse(line["data: ".Length..])!;
                if ((string?)data["type"] == "response.output_text.delta") received.Append((string)data["delta"]!);
            }
        }   // the client leaves while the upstream is silent, before the 2 s idle timeout

        Assert.Equal(half, received.ToString());
        var row = await app.UsageRowAsync(userId);
        var expected = O200k.CountTokens(half);
        var billed = row["completion_tokens"]!.GetValue<long>();
        Assert.True(billed >= expected * 0.9 && billed <= expected * 1.1, $"billed {billed} output tokens; the forwarded text is {expected} (±10 %)");
        Assert.True(row["estimated"]!.GetValue<bool>());
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - row["cost_micros"]!.GetValue<long>());
    }

    [Fact]
    public async Task An_absurdly_low_native_usage_report_is_replaced_by_our_count_and_the_client_sees_what_it_pays()
    {
        var (client, _, userId) = await StartAsync();
        app.OpenAi.Mode = FakeOpenAi.Behaviour.LowUsage;
        app.OpenAi.Reply = LongReply.Text;

        var answer = (await (await client.PostAsync("/api/v1/responses",
            Body($$"""{"model":"{{StreamBillingApp.Gpt}}","input":"LONG please","max_output_tokens":1000}"""))).Content.ReadFromJsonAsync<JsonObject>())!;

        var expected = O200k.CountTokens(LongReply.Text);
        var row = await app.UsageRowAsync(userId);
        var billed = row["completion_tokens"]!.GetValue<long>();
        Assert.True(billed >= expected * 0.9 && billed <= expected * 1.1, $"billed {billed} for an answer of {expected}; the provider said 1");
        Assert.Equal(billed, (long)answer["usage"]!["output_tokens"]!);
        Assert.Equal(StreamBillingApp.Gpt, (string)answer["model"]!);
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - row["cost_micros"]!.GetValue<long>());
    }
}
