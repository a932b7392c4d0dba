using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using static AiGate.Web.Tests.Features.Providers.TranslatorHarness;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>The Anthropic translation on its own: request shape, answers and recorded event streams → OpenAI chunks.</summary>
public sealed class AnthropicAdapterTests
{
    private static readonly Provider Provider = Upstream("anthropic", ProviderKind.Anthropic, "https://api.anthropic.com", "sk-ant-test", AnthropicAdapter.Instance);

    [Fact]
    public void Request_goes_to_v1_messages_with_key_version_and_a_translated_body()
    {
        var call = Call("""
            {"model":"anthropic/claude-sonnet-4-5","stream":true,"temperature":0.2,"top_p":0.9,"stop":"END","user":"u-1",
             "parallel_tool_calls":false,
             "messages":[
              {"role":"system","content":"Be brief."},
              {"role":"developer","content":[{"type":"text","text":"Use metric."}]},
              {"role":"user","content":[{"type":"text","text":"What is this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
                {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"sunny"},
              {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"rainy"}]},
              {"role":"user","content":"thanks"}],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
             "tool_choice":{"type":"function","function":{"name":"get_weather"}}}
            """);

        using var request = AnthropicAdapter.Instance.CreateChatRequest(Provider, call, "claude-sonnet-4-5", Provider.ApiKey);

        Assert.Equal("https://api.anthropic.com/v1/messages", request.RequestUri!.ToString());
        Assert.Equal("sk-ant-test", request.Headers.GetValues("x-api-key").Single());
        Assert.Equal("2023-06-01", request.Headers.GetValues("anthropic-version").Single());
        Assert.Null(request.Headers.Authorization);
        var body = Json(BodyOf(request));
        Assert.Equal("claude-sonnet-4-5", (string)body["model"]!);
        Assert.Equal(64_000, (long)body["max_tokens"]!);   // the model's maximum when the client gives none
        Assert.True((bool)body["stream"]!);
        Assert.Equal(0.2, (double)body["temperature"]!);
        Assert.Equal(0.9, (double)body["top_p"]!);
        Assert.Equal("""["END"]""", body["stop_sequences"]!.ToJsonString());
        Assert.Equal("u-1", (string)body["metadata"]!["user_id"]!);
        Assert.Equal("""[{"type":"text","text":"Be brief."},{"type":"text","text":"Use metric."}]""", body["system"]!.ToJsonString());

        var messages = (JsonArray)body["messages"]!;
        Assert.Equal(["user", "assistant", "user"], messages.Select(m => (string)m!["role"]!));
        Assert.Equal("""[{"type":"text","text":"What is this?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]""",
            messages[0]!["content"]!.ToJsonString());
        Assert.Equal("""[{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},{"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Rome"}}]""",
            messages[1]!["content"]!.ToJsonString());
        // Both results and the following user text in one user turn, results first.
        Assert.Equal("""[{"type":"tool_result","tool_use_id":"call_1","content":"sunny"},{"type":"tool_result","tool_use_id":"call_2","content":"rainy"},{"type":"text","text":"thanks"}]""",
            messages[2]!["content"]!.ToJsonString());
        Assert.Equal("""[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]""", body["tools"]!.ToJsonString());
        Assert.Equal("""{"type":"tool","name":"get_weather","disable_parallel_tool_use":true}""", body["tool_choice"]!.ToJsonString());
    }

    [Theory]
    [InlineData("\"auto\"", """{"type":"auto"}""")]
    [InlineData("\"none\"", """{"type":"none"}""")]
    [InlineData("\"required\"", """{"type":"any"}""")]
    public void Tool_choice_maps_to_anthropic_types(string choice, string expected)
    {
        var call = Call($$$"""{"model":"m","max_completion_tokens":100,"messages":[{"role":"user","content":"hi"}],"tool_choice":{{{choice}}},"tools":[{"type":"function","function":{"name":"f"}}]}""");
        var body = AnthropicAdapter.BuildRequest(call, "claude");
        Assert.Equal(expected, body["tool_choice"]!.ToJsonString());
        Assert.Equal(100, (long)body["max_tokens"]!);
        Assert.Equal("""{"type":"object","properties":{}}""", body["tools"]![0]!["input_schema"]!.ToJsonString());
    }

    [Fact]
    public void Answer_with_text_and_tool_use_becomes_a_chat_completion_with_every_input_token_counted()
    {
        var call = Call("""{"model":"m","messages":[{"role":"user","content":"hi"}]}""");
        var result = AnthropicAdapter.Instance.ReadChatCompletion(Encoding.UTF8.GetBytes(FakeAnthropic.ToolUseMessage), call);

        var choice = result.Response["choices"]![0]!;
        Assert.Equal("chatcmpl-test", (string)result.Response["id"]!);
        Assert.Equal("vendor/model", (string)result.Response["model"]!);
        Assert.Equal("I'll check the weather.", (string)choice["message"]!["content"]!);
        Assert.Equal("tool_calls", (string)choice["finish_reason"]!);
        var toolCall = choice["message"]!["tool_calls"]![0]!;
        Assert.Equal("toolu_01A09q90qw90lq917835lq9", (string)toolCall["id"]!);
        Assert.Equal("get_weather", (string)toolCall["function"]!["name"]!);
        Assert.Equal("""{"city":"Paris","unit":"celsius"}""", (string)toolCall["function"]!["arguments"]!);
        Assert.Equal(new TokenUsage(380, 62, 0), result.Usage);

        var cached = AnthropicAdapter.Instance.ReadChatCompletion(Encoding.UTF8.GetBytes(FakeAnthropic.TextMessage), call);
        Assert.Equal(new TokenUsage(25 + 100 + 10, 15, 100), cached.Usage);   // input + cache read + cache write; reads are the cached part
        Assert.Null(cached.Response["choices"]![0]!["message"]!["tool_calls"]);
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("refusal", "content_filter")]
    [InlineData("pause_turn", "stop")]
    public void Stop_reasons_map_to_finish_reasons(string stopReason, string finishReason) =>
        Assert.Equal(finishReason, AnthropicAdapter.FinishReason(stopReason));

    [Fact]
    public void Text_stream_becomes_role_content_finish_usage_and_done()
    {
        var call = Call("""{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}""");
        var translator = AnthropicAdapter.Instance.CreateStreamTranslator(call);

        var events = Run(translator, FakeAnthropic.TextStream);

        Assert.Equal(6, events.Count);
        Assert.Equal("""{"id":"chatcmpl-test","object":"chat.completion.chunk","created":1700000000,"model":"vendor/model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}""", events[0]);
        Assert.Equal("Hello", (string)Delta(events[1])["content"]!);
        Assert.Equal(" from \"Claude\"!", (string)Delta(events[2])["content"]!);
        Assert.Equal("""{"id":"chatcmpl-test","object":"chat.completion.chunk","created":1700000000,"model":"vendor/model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}""", events[3]);
        var usage = Json(events[4]);
        Assert.Empty(usage["choices"]!.AsArray());
        Assert.Equal(135, (long)usage["usage"]!["prompt_tokens"]!);
        Assert.Equal(15, (long)usage["usage"]!["completion_tokens"]!);
        Assert.Equal(100, (long)usage["usage"]!["prompt_tokens_details"]!["cached_tokens"]!);
        Assert.Equal(ModelPricing.MicrosToUsd(Pricing.CostMicros(new TokenUsage(135, 15, 100))), (decimal)usage["usage"]!["cost"]!);
        Assert.Equal("[DONE]", events[5]);
        Assert.True(translator.Finished);
        Assert.Equal(new TokenUsage(135, 15, 100), translator.Usage);
        Assert.Equal(5 + 17, translator.CompletionBytes);   // "Hello" + the escaped form of ` from "Claude"!`
    }

    [Fact]
    public void Without_include_usage_there_is_no_usage_chunk_but_usage_is_still_known()
    {
        var translator = AnthropicAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}""", clientWantsUsage: false));
        var events = Run(translator, FakeAnthropic.TextStream, splitEvery: 1);
        Assert.Equal(5, events.Count);
        Assert.DoesNotContain(events, e => e.Contains("\"usage\"", StringComparison.Ordinal));
        Assert.Equal(new TokenUsage(135, 15, 100), translator.Usage);
    }

    [Fact]
    public void Tool_stream_numbers_tool_calls_among_tool_blocks_and_streams_arguments()
    {
        var translator = AnthropicAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""));

        var events = Run(translator, FakeAnthropic.ToolStream);

        Assert.Equal("Checking.", (string)Delta(events[1])["content"]!);
        var start = Delta(events[2])["tool_calls"]![0]!;
        Assert.Equal("""{"index":0,"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","type":"function","function":{"name":"get_weather","arguments":""}}""", start.ToJsonString());
        // Argument fragments pass through exactly as Anthropic escaped them.
        Assert.Contains("""{"index":0,"function":{"arguments":"{\"city\": \"Par"}}""", events[3], StringComparison.Ordinal);
        Assert.Contains("""{"index":0,"function":{"arguments":"is\"}"}}""", events[4], StringComparison.Ordinal);
        Assert.Equal("tool_calls", (string)Json(events[5])["choices"]![0]!["finish_reason"]!);
        Assert.Equal(new TokenUsage(472, 89, 0), translator.Usage);
        Assert.Equal("[DONE]", events[^1]);
    }

    [Fact]
    public void Error_event_mid_stream_gives_an_openai_error_then_done_and_keeps_the_usage_so_far()
    {
        var translator = AnthropicAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""));

        var events = Run(translator, FakeAnthropic.ErrorStream);

        Assert.Equal("Partial answer that goes on for a while", (string)Delta(events[1])["content"]!);
        Assert.Equal("""{"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded_error"}}""", events[2]);
        Assert.Equal("[DONE]", events[3]);
        Assert.Equal(4, events.Count);
        Assert.True(translator.Finished);
        Assert.True(translator.Failed);
        // 30 input tokens are exact; output is our count of the forwarded text (cl100k for Claude), more than the 1 reported at the start.
        var forwarded = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("cl100k_base").CountTokens("Partial answer that goes on for a while");
        Assert.Equal(new TokenUsage(30, forwarded, 0, Estimated: true), translator.BillableUsage(endedCleanly: false));
        Assert.Equal(new TokenUsage(30, 1, 0), translator.Usage);   // what Anthropic said, kept apart from the decision
    }

    [Fact]
    public void Stream_cut_before_message_stop_is_not_finished_but_keeps_usage()
    {
        var translator = AnthropicAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""));
        var cut = FakeAnthropic.TextStream[..FakeAnthropic.TextStream.IndexOf("event: message_delta", StringComparison.Ordinal)];

        var events = Run(translator, cut);

        Assert.False(translator.Finished);   // the relay then writes its own error and [DONE]
        Assert.DoesNotContain("[DONE]", events);
        Assert.Equal(135, translator.Usage!.Value.PromptTokens);
    }

    [Fact]
    public void Garbage_event_is_a_protocol_error()
    {
        var translator = AnthropicAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""));
        Assert.Throws<UpstreamProtocolException>(() => Run(translator, "event: content_block_delta\ndata: {\"type\": \"content_blo\n\n"));
        Assert.Throws<UpstreamProtocolException>(() => AnthropicAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""))
            .OnEvent("content_block_start"u8, [.. "{\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\""u8, 0xC3, 0x28, .. "\"}}"u8], new AiGate.Web.Features.Gateway.SseWriter(new System.Buffers.ArrayBufferWriter<byte>())));
    }

    [Fact]
    public void Error_envelope_gives_its_message()
    {
        Assert.Equal("messages: text content blocks must contain non-whitespace text", AnthropicAdapter.Instance.ReadErrorMessage(Encoding.UTF8.GetBytes(FakeAnthropic.BadRequestError)));
        Assert.Null(AnthropicAdapter.Instance.ReadErrorMessage("<html>bad gateway</html>"u8));
    }
}
