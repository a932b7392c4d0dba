using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.ML.Tokenizers;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/completions</c> (legacy) through the real app. The OpenAI .NET SDK 2.x has no client for it, so these
/// tests speak raw HTTP in OpenAI's wire format: forwarded to an OpenAI-kind route (the fake's <c>/v1/completions</c>),
/// answered offline by echo, refused for Claude and Gemini models; JSON and streams, the reservation of every choice,
/// errors in OpenAI's envelope, exact charging, an answer without usage and the client that leaves.
/// </summary>
public sealed class CompletionsEndpointTests(ResponsesApp app) : IClassFixture<ResponsesApp>
{
    private static readonly Tokenizer O200k = TiktokenTokenizer.CreateForEncoding("o200k_base");

    private async Task<(HttpClient Client, Guid UserId)> StartAsync(long creditMicros = 10_000_000)
    {
        app.OpenAi.Reset();
        app.OpenAi.Reply = "Hello from the fake upstream";
        app.Anthropic.Requests.Clear();
        app.GeminiFake.Requests.Clear();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: creditMicros);
        return (client, userId);
    }

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static List<JsonNode> Chunks(string sse, out bool done)
    {
        done = false;
        var chunks = new List<JsonNode>();
        foreach (var block in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.StartsWith("data: ", block, StringComparison.Ordinal);
            var data = block["data: ".Length..];
            if (data == "[DONE]") done = true;
            else chunks.Add(JsonNode.Parse(data)!);
        }
        return chunks;
    }

    [Fact]
    public async Task A_prompt_is_forwarded_to_an_openai_route_and_charged_exactly()
    {
        var (client, userId) = await StartAsync();

        var response = await client.PostAsync("/api/v1/completions", Body($$"""{"model":"{{StreamBillingApp.Gpt}}","prompt":"Say this is a test"}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("text_completion", (string)answer["object"]!);
        Assert.Equal(StreamBillingApp.Gpt, (string)answer["model"]!);
        Assert.Equal("Hello from the fake upstream", (string)answer["choices"]![0]!["text"]!);
        Assert.Equal(11, (int)answer["usage"]!["prompt_tokens"]!);
        Assert.Equal(7, (int)answer["usage"]!["completion_tokens"]!);
        Assert.Equal(0.000018m, (decimal)answer["usage"]!["cost"]!);
        Assert.Equal("0.000018", response.Headers.GetValues("X-AiGate-Cost-Usd").Single());
        var upstream = JsonNode.Parse(app.OpenAi.Requests.Single(r => r.PathAndQuery == "/v1/completions").Body)!;
        Assert.Equal("gpt-4o-mini", (string)upstream["model"]!);
        Assert.Equal(16, (int)upstream["max_tokens"]!);   // OpenAI's default, sent so that the reservation bounds the cost
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(11, row["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(7, row["completion_tokens"]!.GetValue<long>());
        Assert.Equal(18, row["cost_micros"]!.GetValue<long>());
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - 18);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_stream_is_relayed_as_text_completion_chunks_and_billed_by_the_providers_usage(bool includeUsage)
    {
        var (client, userId) = await StartAsync();
        var options = includeUsage ? ""","stream_options":{"include_usage":true}""" : "";

        var response = await client.PostAsync("/api/v1/completions",
            Body($$"""{"model":"{{StreamBillingApp.Gpt}}","prompt":"Say this is a test","max_tokens":50,"stream":true{{options}}}"""));

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var chunks = Chunks(await response.Content.ReadAsStringAsync(), out var done);
        Assert.True(done);
        Assert.All(chunks, c => Assert.Equal("text_completion", (string)c["object"]!));
        Assert.Equal("Hello from the fake upstream", string.Concat(chunks.SelectMany(c => c["choices"]!.AsArray()).Select(c => (string)c!["text"]!)));
        var usage = chunks.Where(c => c["usage"] is JsonObject).Select(c => c["usage"]!).ToList();
        if (includeUsage) Assert.Equal(0.000018m, (decimal)usage.Single()["cost"]!);
        else Assert.Empty(usage);   // asked upstream for the bill, not passed on
        var upstream = JsonNode.Parse(app.OpenAi.Requests.Single(r => r.PathAndQuery == "/v1/completions").Body)!;
        Assert.True((bool)upstream["stream_options"]!["include_usage"]!);
        var row = await app.UsageRowAsync(userId);
        Assert.Equal(7, row["completion_tokens"]!.GetValue<long>());
        Assert.True(row["streamed"]!.GetValue<bool>());
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - 18);
    }

    [Fact]
    public async Task Echo_answers_offline_as_json_and_as_a_stream()
    {
        var (client, userId) = await StartAsync();

        var answer = (await (await client.PostAsync("/api/v1/completions",
            Body("""{"model":"echo/echo-1","prompt":["hello there","second"],"max_tokens":5}"""))).Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(["Echo: hello there", "Echo: second"], answer["choices"]!.AsArray().Select(c => (string)c!["text"]!));
        var row = await app.UsageRowAsync(userId);
        Assert.Equal((long)answer["usage"]!["completion_tokens"]!, row["completion_tokens"]!.GetValue<long>());

        var stream = await (await client.PostAsync("/api/v1/completions",
            Body("""{"model":"echo/echo-1","prompt":"hello stream","stream":true,"stream_options":{"include_usage":true}}"""))).Content.ReadAsStringAsync();
        var chunks = Chunks(stream, out var done);
        Assert.True(done);
        Assert.Equal("Echo: hello stream", string.Concat(chunks.SelectMany(c => c["choices"]!.AsArray()).Select(c => (string)c!["text"]!)));
        Assert.NotNull(chunks[^1]["usage"]!["cost"]);
        Assert.Empty(app.OpenAi.Requests);
    }

    [Fact]
    public async Task Every_choice_of_every_prompt_is_reserved_before_anything_goes_upstream()
    {
        var (client, userId) = await StartAsync(creditMicros: 1_000);

        // 2 prompts × n 2 × 300 tokens = 1,200 µ$ > 1,000 µ$; one choice of one prompt would fit.
        var refused = await client.PostAsync("/api/v1/completions",
            Body($$"""{"model":"{{StreamBillingApp.Gpt}}","prompt":["a","b"],"n":2,"max_tokens":300}"""));
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        Assert.Equal("insufficient_credits", (string)(await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!);

        // best_of generates (and bills) best_of completions upstream: 4 × 300 is refused as well.
        var bestOf = await client.PostAsync("/api/v1/completions",
            Body($$"""{"model":"{{StreamBillingApp.Gpt}}","prompt":"a","best_of":4,"max_tokens":300}"""));
        Assert.Equal(HttpStatusCode.PaymentRequired, bestOf.StatusCode);
        Assert.Equal(0, app.OpenAi.CompletionsRequests);

        var fits = await client.PostAsync("/api/v1/completions", Body($$"""{"model":"{{StreamBillingApp.Gpt}}","prompt":"a","max_tokens":300}"""));
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
        await app.AssertLedgerMatchesBalanceAsync(userId, 1_000 - 18);
    }

    [Theory]
    [InlineData(EveryKindApp.MeteredClaude)]
    [InlineData(EveryKindApp.MeteredGemini)]
    public async Task A_claude_or_gemini_model_is_refused_with_a_400_pointing_at_chat(string model)
    {
        var (client, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/completions", Body($$"""{"model":"{{model}}","prompt":"hi"}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("model_not_supported", (string)error["code"]!);
        Assert.Equal("model", (string)error["param"]!);
        Assert.Contains("/api/v1/chat/completions", (string)error["message"]!, StringComparison.Ordinal);
        Assert.Empty(app.Anthropic.Requests);
        Assert.Empty(app.GeminiFake.Requests);
    }

    [Theory]
    [InlineData("""{"model":"test/gpt-4o-mini"}""", "prompt")]
    [InlineData("""{"model":"test/gpt-4o-mini","prompt":[1212,318]}""", "prompt")]
    [InlineData("""{"model":"test/gpt-4o-mini","prompt":[]}""", "prompt")]
    [InlineData("""{"model":"test/gpt-4o-mini","prompt":"a","n":3,"best_of":2}""", "best_of")]
    [InlineData("""{"model":"test/gpt-4o-mini","prompt":"a","max_tokens":0}""", "max_tokens")]
    [InlineData("""{"model":"test/gpt-4o-mini","prompt":"a","max_tokens":100000}""", "max_tokens")]
    [InlineData("""{"model":"test/gpt-4o-mini","prompt":"a","stream":"yes"}""", "stream")]
    [InlineData("""{"model":"test/gpt-4o-mini","prompt":"a","suffix":3}""", "suffix")]
    [InlineData("""{"prompt":"a"}""", "model")]
    public async Task Bad_requests_get_a_400_in_openais_envelope_and_nothing_goes_upstream(string json, string param)
    {
        var (client, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/completions", Body(json));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("invalid_request_error", (string)error["type"]!);
        Assert.Equal(param, (string?)error["param"]);
        Assert.Empty(app.OpenAi.Requests);
    }

    [Fact]
    public async Task An_unknown_model_is_a_404_model_not_found()
    {
        var (client, _) = await StartAsync();

        var response = await client.PostAsync("/api/v1/completions", Body("""{"model":"nope/none","prompt":"hi"}"""));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model_not_found", (string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!);
    }

    [Fact]
    public async Task An_answer_without_usage_is_billed_by_our_count_of_its_text()
    {
        var (client, userId) = await StartAsync();
        app.OpenAi.Mode = FakeOpenAi.Behaviour.NoUsage;
        app.OpenAi.Reply = LongReply.Text;

        var response = await client.PostAsync("/api/v1/completions", Body($$"""{"model":"{{StreamBillingApp.Gpt}}","prompt":"LONG please","max_tokens":1000}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var expected = O200k.CountTokens(LongReply.Text);
        var row = await app.UsageRowAsync(userId);
        var billed = row["completion_tokens"]!.GetValue<long>();
        Assert.True(billed >= expected * 0.9 && billed <= expected * 1.1, $"billed {billed} output tokens for an answer of {expected}");
        Assert.True(row["estimated"]!.GetValue<bool>());
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000_000 - row["cost_micros"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_client_that_leaves_half_way_pays_for_the_text_it_was_sent()
    {
        var (client, userId) = await StartAsync();
        app.OpenAi.Mode = FakeOpenAi.Behaviour.StallHalfway;
        app.OpenAi.Reply = LongReply.Text;
        var words = LongReply.Text.Split(' ');
        var half = string.Join(' ', words.Take(words.Length / 2));

        var received = new StringBuilder();
        using (var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/completions")
               {
                   Content = Body($$"""{"model":"{{StreamBillingApp.Gpt}}","stream":true,"max_tokens":2000,"prompt":"Write something LONG please"}"""),
               }, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (received.Length < half.Length && await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                received.Append((string?)JsonNode.Parse(line["data: ".Length..])!["choices"]?[0]?["text"]);
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
}
