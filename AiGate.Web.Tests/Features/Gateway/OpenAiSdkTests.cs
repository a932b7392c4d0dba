using System.ClientModel;
using System.ClientModel.Primitives;
using AiGate.Web.Tests.Infrastructure;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Models;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>The official OpenAI .NET SDK, unchanged but for its endpoint, against /api/v1 and the echo provider.</summary>
public sealed class OpenAiSdkTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    private async Task<OpenAIClient> ClientAsync()
    {
        var (_, key, _) = await app.CreateApiClientAsync();
        return ClientFor(key);
    }

    private OpenAIClient ClientFor(string key) => new(new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = new Uri(app.Server.BaseAddress, "/api/v1"),
        Transport = new HttpClientPipelineTransport(app.CreateClient()),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
    });

    [Fact]
    public async Task Lists_models_with_our_prices()
    {
        var client = await ClientAsync();
        var models = (await client.GetOpenAIModelClient().GetModelsAsync()).Value;

        Assert.Contains(models, m => m.Id == "echo/echo-1" && m.OwnedBy == "aigate");
        // Only servable models are listed: no provider is configured for OpenAI here.
        Assert.DoesNotContain(models, m => m.Id == "openai/gpt-4o-mini");
        var one = (await client.GetOpenAIModelClient().GetModelAsync("echo/echo-1")).Value;
        Assert.Equal("echo/echo-1", one.Id);
    }

    [Fact]
    public async Task Non_streamed_chat_completion_comes_back_with_usage()
    {
        var chat = (await ClientAsync()).GetChatClient("echo/echo-1");

        var completion = (await chat.CompleteChatAsync([new UserChatMessage("hello gateway")])).Value;

        Assert.Equal("Echo: hello gateway", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("echo/echo-1", completion.Model);
        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.Equal(5, completion.Usage.OutputTokenCount);   // "Echo: hello gateway" = 19 bytes → ceil(19/4)
    }

    [Fact]
    public async Task Streamed_chat_completion_arrives_in_chunks_with_usage()
    {
        var chat = (await ClientAsync()).GetChatClient("echo-1");   // an alias resolves too
        var text = new System.Text.StringBuilder();
        var updates = 0;
        ChatTokenUsage? usage = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("stream me please")]))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            usage ??= update.Usage;
        }

        Assert.Equal("Echo: stream me please", text.ToString());
        Assert.True(updates >= 4, $"expected several chunks, got {updates}");
        Assert.NotNull(usage);   // the .NET SDK asks for include_usage itself
        Assert.Equal(6, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Embeddings_come_back_as_floats_via_base64()
    {
        var embeddings = (await ClientAsync()).GetEmbeddingClient("echo/echo-embed");

        var result = (await embeddings.GenerateEmbeddingsAsync(["one", "two"])).Value;

        Assert.Equal(2, result.Count);
        Assert.Equal(8, result[0].ToFloats().Length);
        Assert.NotEqual(result[0].ToFloats().ToArray(), result[1].ToFloats().ToArray());
        Assert.True(result.Usage.InputTokenCount > 0);
    }

    [Fact]
    public async Task Typed_errors_for_401_404_and_400()
    {
        var bad = ClientFor("ag_test_" + new string('0', 49));
        var unauthorized = await Assert.ThrowsAsync<ClientResultException>(() => bad.GetChatClient("echo/echo-1").CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(401, unauthorized.Status);

        var client = await ClientAsync();
        var notFound = await Assert.ThrowsAsync<ClientResultException>(() => client.GetChatClient("nope/model").CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(404, notFound.Status);
        Assert.Contains("model_not_found", notFound.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);

        var badRequest = await Assert.ThrowsAsync<ClientResultException>(() => client.GetChatClient("echo/echo-1")
            .CompleteChatAsync([new UserChatMessage("x")], new ChatCompletionOptions { Temperature = 7 }));
        Assert.Equal(400, badRequest.Status);
        Assert.Contains("temperature", badRequest.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tools_round_trip_through_the_gateway()
    {
        var chat = (await ClientAsync()).GetChatClient("echo/echo-1");
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };

        // A conversation with a tool call and its result is accepted and relayed.
        var completion = (await chat.CompleteChatAsync([
            new UserChatMessage("weather in Paris?"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call_1", "get_weather", BinaryData.FromString("""{"city":"Paris"}"""))]),
            new ToolChatMessage("call_1", "sunny"),
            new UserChatMessage("thanks"),
        ], options)).Value;

        Assert.Equal("Echo: thanks", completion.Content[0].Text);
    }
}
