using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>The app with providers named anthropic and gemini pointing at fakes that speak those APIs.</summary>
public sealed class ProviderFakesApp : AiGateApp
{
    public ConcurrentQueue<string> Violations { get; } = new();
    public FakeUpstream Anthropic { get; private set; } = null!;
    public FakeUpstream Gemini { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Anthropic = await FakeAnthropic.StartAsync(Violations);
        Gemini = await FakeGemini.StartAsync(Violations);
        await base.InitializeAsync();
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:anthropic:Kind"] = "anthropic",
        ["Providers:anthropic:BaseUrl"] = Anthropic.BaseUrl.ToString(),
        ["Providers:anthropic:ApiKey"] = FakeAnthropic.ProviderKey,
        ["Providers:gemini:Kind"] = "gemini",
        ["Providers:gemini:BaseUrl"] = Gemini.BaseUrl.ToString(),
        ["Providers:gemini:ApiKey"] = FakeGemini.ProviderKey,
    };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Anthropic.DisposeAsync();
        await Gemini.DisposeAsync();
    }
}

/// <summary>
/// The official OpenAI .NET SDK against /api/v1, served by Anthropic and Gemini through the
/// translating adapters: text, streams with exact usage and cost, tools both ways, images, stop
/// reasons, upstream errors and mid-stream failures.
/// </summary>
public sealed class ProviderGatewayTests(ProviderFakesApp app) : IClassFixture<ProviderFakesApp>
{
    private const string Claude = "anthropic/claude-sonnet-4-5";
    private const string Gemini = "google/gemini-2.5-flash";

    private async Task<(ChatClient Chat, string Key)> ChatAsync(string model)
    {
        var (_, key, _) = await app.CreateApiClientAsync();
        var client = new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(app.Server.BaseAddress, "/api/v1"),
            Transport = new HttpClientPipelineTransport(app.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
        return (client.GetChatClient(model), key);
    }

    private FakeUpstream Fake(string model) => model == Claude ? app.Anthropic : app.Gemini;

    private async Task<ModelPricing> PricingAsync(string model)
    {
        var catalog = app.Services.GetRequiredService<ModelCatalog>();
        return (await catalog.FindAsync(model, CancellationToken.None))!.Pricing!.Value;
    }

    private static JsonObject LastBody(FakeUpstream fake) => (JsonObject)JsonNode.Parse(fake.Requests.Last().Body)!;

    private void NoViolations() => Assert.True(app.Violations.IsEmpty, string.Join("; ", app.Violations));

    [Theory]
    [InlineData(Claude, "Hello from Claude!", 135, 15, 100)]
    [InlineData(Gemini, "Hello from Gemini!", 40, 35, 16)]
    public async Task Non_streamed_chat_is_translated_with_exact_usage_and_cost(string model, string text, int prompt, int completion, int cached)
    {
        var (chat, key) = await ChatAsync(model);

        var result = await chat.CompleteChatAsync([new SystemChatMessage("Be friendly."), new UserChatMessage("hello")]);
        var completion_ = result.Value;

        Assert.Equal(text, completion_.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion_.FinishReason);
        Assert.Equal(model, completion_.Model);
        Assert.Equal(prompt, completion_.Usage.InputTokenCount);
        Assert.Equal(completion, completion_.Usage.OutputTokenCount);
        Assert.Equal(cached, completion_.Usage.InputTokenDetails.CachedTokenCount);
        var cost = ModelPricing.MicrosToUsd((await PricingAsync(model)).CostMicros(new TokenUsage(prompt, completion, cached)));
        Assert.True(result.GetRawResponse().Headers.TryGetValue("X-AiGate-Cost-Usd", out var header));
        Assert.Equal(cost, decimal.Parse(header!, System.Globalization.CultureInfo.InvariantCulture));

        // The provider got its own key, never the user's gateway key.
        var request = Fake(model).Requests.Last();
        Assert.Equal("application/json", request.Headers["Content-Type"]);
        Assert.DoesNotContain(request.Headers.Values, v => v.Contains(key, StringComparison.Ordinal));
        Assert.DoesNotContain(key, request.Body, StringComparison.Ordinal);
        NoViolations();
    }

    [Theory]
    [InlineData(Claude, "Hello from \"Claude\"!", 135, 15, 100)]
    [InlineData(Gemini, "Hello from \"Gemini\"!", 40, 35, 16)]
    public async Task Streamed_chat_arrives_in_chunks_with_usage(string model, string text, int prompt, int completion, int cached)
    {
        var (chat, _) = await ChatAsync(model);
        var assembled = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream please")]))
        {
            foreach (var part in update.ContentUpdate) assembled.Append(part.Text);
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal(text, assembled.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage);
        Assert.Equal(prompt, usage!.InputTokenCount);
        Assert.Equal(completion, usage.OutputTokenCount);
        Assert.Equal(cached, usage.InputTokenDetails.CachedTokenCount);
        NoViolations();
    }

    [Theory]
    [InlineData(Claude)]
    [InlineData(Gemini)]
    public async Task Usage_chunk_carries_our_cost_and_the_stream_ends_with_done(string model)
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", new
        {
            model, stream = true, stream_options = new { include_usage = true }, messages = new[] { new { role = "user", content = "hi" } },
        });
        var events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("data: [DONE]", events[^1]);
        var usage = JsonNode.Parse(events[^2]["data: ".Length..])!;
        Assert.Empty(usage["choices"]!.AsArray());
        var expected = model == Claude ? new TokenUsage(135, 15, 100) : new TokenUsage(40, 35, 16);
        Assert.Equal(ModelPricing.MicrosToUsd((await PricingAsync(model)).CostMicros(expected)), (decimal)usage["usage"]!["cost"]!);
        Assert.Equal(expected.TotalTokens, (long)usage["usage"]!["total_tokens"]!);
    }

    [Theory]
    [InlineData(Claude, false)]
    [InlineData(Claude, true)]
    [InlineData(Gemini, false)]
    [InlineData(Gemini, true)]
    public async Task Tools_round_trip_through_the_provider(string model, bool stream)
    {
        var (chat, _) = await ChatAsync(model);
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<ChatMessage> conversation = [new UserChatMessage("TOOLS: weather in Paris?")];

        string id, name, arguments;
        if (stream)
        {
            var (idBuilder, nameBuilder, argumentsBuilder) = (new StringBuilder(), new StringBuilder(), new StringBuilder());
            ChatFinishReason? finish = null;
            await foreach (var update in chat.CompleteChatStreamingAsync(conversation, options))
            {
                foreach (var call in update.ToolCallUpdates)
                {
                    Assert.Equal(0, call.Index);
                    idBuilder.Append(call.ToolCallId);
                    nameBuilder.Append(call.FunctionName);
                    argumentsBuilder.Append(call.FunctionArgumentsUpdate?.ToString());
                }
                finish ??= update.FinishReason;
            }
            Assert.Equal(ChatFinishReason.ToolCalls, finish);
            (id, name, arguments) = (idBuilder.ToString(), nameBuilder.ToString(), argumentsBuilder.ToString());
        }
        else
        {
            var completion = (await chat.CompleteChatAsync(conversation, options)).Value;
            Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
            var call = Assert.Single(completion.ToolCalls);
            (id, name, arguments) = (call.Id, call.FunctionName, call.FunctionArguments.ToString());
        }
        Assert.Equal("get_weather", name);
        Assert.Equal("Paris", (string)JsonNode.Parse(arguments)!["city"]!);
        Assert.NotEmpty(id);
        var upstreamTools = LastBody(Fake(model));
        if (model == Claude) Assert.Equal("get_weather", (string)upstreamTools["tools"]![0]!["name"]!);
        else Assert.Equal("get_weather", (string)upstreamTools["tools"]![0]!["functionDeclarations"]![0]!["name"]!);

        conversation.Add(new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall(id, name, BinaryData.FromString(arguments))]));
        conversation.Add(new ToolChatMessage(id, "sunny, 24 °C"));
        var answer = (await chat.CompleteChatAsync(conversation, options)).Value;

        Assert.Equal(ChatFinishReason.Stop, answer.FinishReason);
        var body = LastBody(Fake(model));
        if (model == Claude)
        {
            var messages = body["messages"]!.AsArray();
            Assert.Equal("tool_use", (string)messages[1]!["content"]![0]!["type"]!);
            Assert.Equal(id, (string)messages[1]!["content"]![0]!["id"]!);
            var result = messages[2]!["content"]![0]!;
            Assert.Equal("tool_result", (string)result["type"]!);
            Assert.Equal(id, (string)result["tool_use_id"]!);
            Assert.Equal("sunny, 24 °C", (string)result["content"]!);
        }
        else
        {
            var contents = body["contents"]!.AsArray();
            Assert.Equal("Paris", (string)contents[1]!["parts"]![0]!["functionCall"]!["args"]!["city"]!);
            var response = contents[2]!["parts"]![0]!["functionResponse"]!;
            Assert.Equal("get_weather", (string)response["name"]!);   // Gemini pairs results by name
            Assert.Equal("sunny, 24 °C", (string)response["response"]!["content"]!);
        }
        NoViolations();
    }

    [Theory]
    [InlineData(Claude)]
    [InlineData(Gemini)]
    public async Task Image_parts_are_translated(string model)
    {
        var (chat, _) = await ChatAsync(model);
        var png = BinaryData.FromBytes([0x89, 0x50, 0x4E, 0x47]);

        await chat.CompleteChatAsync([new UserChatMessage(
            ChatMessageContentPart.CreateTextPart("What is in these?"),
            ChatMessageContentPart.CreateImagePart(png, "image/png"),
            ChatMessageContentPart.CreateImagePart(new Uri("https://example.com/cat.jpg")))]);

        var parts = model == Claude ? LastBody(Fake(model))["messages"]![0]!["content"]!.AsArray() : LastBody(Fake(model))["contents"]![0]!["parts"]!.AsArray();
        if (model == Claude)
        {
            Assert.Equal("""{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw=="}}""", parts[1]!.ToJsonString());
            Assert.Equal("""{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}""", parts[2]!.ToJsonString());
        }
        else
        {
            Assert.Equal("""{"inlineData":{"mimeType":"image/png","data":"iVBORw=="}}""", parts[1]!.ToJsonString());
            Assert.Equal("""{"fileData":{"mimeType":"image/jpeg","fileUri":"https://example.com/cat.jpg"}}""", parts[2]!.ToJsonString());
        }
        NoViolations();
    }

    [Fact]
    public async Task Stop_reasons_come_back_as_openai_finish_reasons()
    {
        var (claude, _) = await ChatAsync(Claude);
        var truncated = (await claude.CompleteChatAsync([new UserChatMessage("MAX please")], new ChatCompletionOptions { MaxOutputTokenCount = 3 })).Value;
        Assert.Equal(ChatFinishReason.Length, truncated.FinishReason);
        Assert.Equal(3, (long)LastBody(app.Anthropic)["max_tokens"]!);

        var (gemini, _) = await ChatAsync(Gemini);
        var filtered = (await gemini.CompleteChatAsync([new UserChatMessage("SAFETY test")])).Value;
        Assert.Equal(ChatFinishReason.ContentFilter, filtered.FinishReason);
        NoViolations();
    }

    [Theory]
    [InlineData(Claude, "messages: text content blocks must contain non-whitespace text")]
    [InlineData(Gemini, "* GenerateContentRequest.contents: contents is not specified\n")]
    public async Task Upstream_400_passes_through_as_an_openai_error_with_the_provider_message(string model, string message)
    {
        var (chat, _) = await ChatAsync(model);

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("BAD REQUEST")]));

        Assert.Equal(400, error.Status);
        var body = JsonNode.Parse(error.GetRawResponse()!.Content.ToString())!;
        Assert.Equal(message, (string)body["error"]!["message"]!);
        Assert.Equal("invalid_request_error", (string)body["error"]!["type"]!);
    }

    [Theory]
    [InlineData(Claude)]
    [InlineData(Gemini)]
    public async Task Overloaded_upstream_is_retried_then_reported_as_a_gateway_error(string model)
    {
        var (chat, _) = await ChatAsync(model);
        var before = Fake(model).Requests.Count;

        var error = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("OVERLOADED")]));

        Assert.Equal(502, error.Status);   // 529 / 503 are the provider's failure, not the client's: retried, then 502
        Assert.Equal(3, Fake(model).Requests.Count - before);
    }

    [Theory]
    [InlineData(Claude, "Overloaded")]
    [InlineData(Gemini, "The model is overloaded. Please try again later.")]
    public async Task Error_event_mid_stream_reaches_the_client_as_an_error_event_then_done(string model, string message)
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", new
        {
            model, stream = true, messages = new[] { new { role = "user", content = "MIDSTREAM ERROR" } },
        });
        var events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.StartsWith("Partial", (string)JsonNode.Parse(events[1]["data: ".Length..])!["choices"]![0]!["delta"]!["content"]!, StringComparison.Ordinal);
        Assert.Equal(message, (string)JsonNode.Parse(events[^2]["data: ".Length..])!["error"]!["message"]!);
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.Single(events, e => e.Contains("\"error\"", StringComparison.Ordinal));
        Assert.Single(events, e => e == "data: [DONE]");
    }
}
