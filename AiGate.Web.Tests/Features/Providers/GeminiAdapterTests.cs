using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using static AiGate.Web.Tests.Features.Providers.TranslatorHarness;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>The Gemini translation on its own: request shape, answers and recorded alt=sse streams → OpenAI chunks.</summary>
public sealed class GeminiAdapterTests
{
    private static readonly Provider Provider = Upstream("gemini", ProviderKind.Gemini, "https://generativelanguage.googleapis.com", "AIza-test", GeminiAdapter.Instance);

    [Fact]
    public void Request_path_key_header_and_body_follow_the_gemini_api()
    {
        var call = Call("""
            {"model":"google/gemini-2.5-flash","stream":true,"max_tokens":500,"temperature":0.5,"top_p":0.8,"n":2,"stop":["END","STOP"],
             "seed":7,"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"}}},
             "messages":[
              {"role":"system","content":"Be brief."},
              {"role":"user","content":[{"type":"text","text":"What is this?"},
                {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},
                {"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]},
              {"role":"assistant","content":"Let me look.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"sunny"},
              {"role":"user","content":"and now?"}],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"additionalProperties":false}}}],
             "tool_choice":"required"}
            """);

        using var request = GeminiAdapter.Instance.CreateChatRequest(Provider, call, "gemini-2.5-flash", Provider.ApiKey);

        Assert.Equal("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", request.RequestUri!.ToString());
        Assert.Equal("AIza-test", request.Headers.GetValues("x-goog-api-key").Single());
        Assert.Null(request.Headers.Authorization);
        var body = Json(BodyOf(request));
        Assert.Equal("""{"parts":[{"text":"Be brief."}]}""", body["systemInstruction"]!.ToJsonString());
        var contents = (JsonArray)body["contents"]!;
        Assert.Equal(["user", "model", "user"], contents.Select(c => (string)c!["role"]!));
        Assert.Equal("""[{"text":"What is this?"},{"inlineData":{"mimeType":"image/jpeg","data":"/9j/4AAQ"}},{"fileData":{"mimeType":"image/png","fileUri":"https://example.com/cat.png"}}]""",
            contents[0]!["parts"]!.ToJsonString());
        Assert.Equal("""[{"text":"Let me look."},{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}]""", contents[1]!["parts"]!.ToJsonString());
        Assert.Equal("""[{"functionResponse":{"name":"get_weather","response":{"content":"sunny"}}},{"text":"and now?"}]""", contents[2]!["parts"]!.ToJsonString());
        Assert.Equal("""[{"functionDeclarations":[{"name":"get_weather","description":"Weather","parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"additionalProperties":false}}]}]""",
            body["tools"]!.ToJsonString());
        Assert.Equal("""{"functionCallingConfig":{"mode":"ANY"}}""", body["toolConfig"]!.ToJsonString());
        Assert.Equal("""{"maxOutputTokens":500,"temperature":0.5,"topP":0.8,"candidateCount":2,"seed":7,"stopSequences":["END","STOP"],"responseMimeType":"application/json","responseJsonSchema":{"type":"object"}}""",
            body["generationConfig"]!.ToJsonString());
        Assert.Null(body["model"]);

        using var plain = GeminiAdapter.Instance.CreateChatRequest(Provider, Call("""{"model":"m","messages":[{"role":"user","content":"hi"}]}"""), "gemini-2.5-flash", Provider.ApiKey);
        Assert.Equal("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent", plain.RequestUri!.ToString());
        // No limit from the client: the call's own limit goes upstream, so the reservation bounds the cost.
        Assert.Equal("""{"maxOutputTokens":64000}""", Json(BodyOf(plain))["generationConfig"]!.ToJsonString());
    }

    [Fact]
    public void Json_tool_output_is_passed_as_the_response_object_and_specific_tool_choice_limits_names()
    {
        var body = GeminiAdapter.BuildRequest(Call("""
            {"model":"m","messages":[{"role":"user","content":"hi"},
              {"role":"assistant","tool_calls":[{"id":"c9","type":"function","function":{"name":"lookup","arguments":""}}]},
              {"role":"tool","tool_call_id":"c9","content":"{\"temp\":21}"}],
             "tools":[{"type":"function","function":{"name":"lookup"}}],"tool_choice":{"type":"function","function":{"name":"lookup"}}}
            """));
        Assert.Equal("""{"functionCall":{"name":"lookup","args":{}}}""", body["contents"]![1]!["parts"]![0]!.ToJsonString());
        Assert.Equal("""{"functionResponse":{"name":"lookup","response":{"temp":21}}}""", body["contents"]![2]!["parts"]![0]!.ToJsonString());
        Assert.Equal("""{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["lookup"]}}""", body["toolConfig"]!.ToJsonString());
    }

    [Fact]
    public void Answer_becomes_a_chat_completion_with_thinking_billed_as_output()
    {
        var call = Call("""{"model":"m","messages":[]}""");
        var result = GeminiAdapter.Instance.ReadChatCompletion(Encoding.UTF8.GetBytes(FakeGemini.TextResponse), call);

        var choice = result.Response["choices"]![0]!;
        Assert.Equal("Hello from Gemini!", (string)choice["message"]!["content"]!);
        Assert.Equal("stop", (string)choice["finish_reason"]!);
        Assert.Equal("chat.completion", (string)result.Response["object"]!);
        Assert.Equal(new TokenUsage(40, 5 + 30, 16), result.Usage);
    }

    [Fact]
    public void Function_call_becomes_a_tool_call_with_a_generated_id()
    {
        var result = GeminiAdapter.Instance.ReadChatCompletion(Encoding.UTF8.GetBytes(FakeGemini.FunctionCallResponse), Call("""{"model":"m","messages":[]}"""));

        var choice = result.Response["choices"]![0]!;
        Assert.Equal("tool_calls", (string)choice["finish_reason"]!);
        Assert.Null((string?)choice["message"]!["content"]);
        var toolCall = choice["message"]!["tool_calls"]![0]!;
        Assert.StartsWith("call_", (string)toolCall["id"]!, StringComparison.Ordinal);
        Assert.Equal("get_weather", (string)toolCall["function"]!["name"]!);
        Assert.Equal("""{"city":"Paris"}""", JsonNode.Parse((string)toolCall["function"]!["arguments"]!)!.ToJsonString());
        Assert.Equal(new TokenUsage(70, 15, 0), result.Usage);
    }

    [Theory]
    [InlineData("STOP", false, "stop")]
    [InlineData("STOP", true, "tool_calls")]
    [InlineData("MAX_TOKENS", false, "length")]
    [InlineData("SAFETY", false, "content_filter")]
    [InlineData("RECITATION", false, "content_filter")]
    [InlineData("BLOCKLIST", false, "content_filter")]
    [InlineData("PROHIBITED_CONTENT", false, "content_filter")]
    [InlineData("OTHER", false, "stop")]
    public void Finish_reasons_map(string reason, bool calledFunction, string expected)
    {
        using var document = JsonDocument.Parse($"\"{reason}\"");
        Assert.Equal(expected, GeminiAdapter.FinishReason(document.RootElement, calledFunction));
    }

    [Fact]
    public void Blocked_prompt_without_candidates_is_a_content_filter_finish()
    {
        var result = GeminiAdapter.Instance.ReadChatCompletion("""{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}"""u8,
            Call("""{"model":"m","messages":[]}"""));
        Assert.Equal("content_filter", (string)result.Response["choices"]![0]!["finish_reason"]!);
        Assert.Equal(new TokenUsage(8, 0, 0), result.Usage);
        Assert.Throws<UpstreamProtocolException>(() => GeminiAdapter.Instance.ReadChatCompletion("""{"usageMetadata":{}}"""u8, Call("""{"model":"m","messages":[]}""")));
    }

    [Fact]
    public void Stream_of_whole_responses_becomes_chunks_and_ends_with_the_last_usage_when_upstream_closes()
    {
        var translator = GeminiAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""));

        var events = Run(translator, FakeGemini.TextStream);

        Assert.Equal(["", "Hello", " from \"Gemini\"", "!"], events.Take(4).Select(e => (string?)Delta(e)["content"]));
        Assert.Equal("assistant", (string)Delta(events[0])["role"]!);
        Assert.Equal("stop", (string)Json(events[4])["choices"]![0]!["finish_reason"]!);
        var usage = Json(events[5])["usage"]!;
        Assert.Equal(40, (long)usage["prompt_tokens"]!);
        Assert.Equal(35, (long)usage["completion_tokens"]!);
        Assert.Equal(16, (long)usage["prompt_tokens_details"]!["cached_tokens"]!);
        Assert.Equal(ModelPricing.MicrosToUsd(Pricing.CostMicros(new TokenUsage(40, 35, 16))), (decimal)usage["cost"]!);
        Assert.Equal("[DONE]", events[6]);
        Assert.Equal(7, events.Count);
        Assert.True(translator.Finished);
        Assert.Equal(new TokenUsage(40, 35, 16), translator.Usage);
    }

    [Fact]
    public void Streamed_function_call_arrives_whole_as_one_tool_call_delta()
    {
        var translator = GeminiAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}""", clientWantsUsage: false));

        var events = Run(translator, FakeGemini.FunctionCallStream);

        var toolCall = Delta(events[1])["tool_calls"]![0]!;
        Assert.Equal(0, (int)toolCall["index"]!);
        Assert.StartsWith("call_", (string)toolCall["id"]!, StringComparison.Ordinal);
        Assert.Equal("function", (string)toolCall["type"]!);
        Assert.Equal("get_weather", (string)toolCall["function"]!["name"]!);
        Assert.Equal("Paris", (string)JsonNode.Parse((string)toolCall["function"]!["arguments"]!)!["city"]!);
        Assert.Equal("tool_calls", (string)Json(events[2])["choices"]![0]!["finish_reason"]!);
        Assert.Equal("[DONE]", events[3]);
        Assert.Equal(4, events.Count);
    }

    [Fact]
    public void Error_chunk_mid_stream_gives_an_openai_error_then_done()
    {
        var translator = GeminiAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""));

        var events = Run(translator, FakeGemini.ErrorStream);

        Assert.Equal("Partial", (string)Delta(events[1])["content"]!);
        Assert.Equal("""{"error":{"message":"The model is overloaded. Please try again later.","type":"server_error","param":null,"code":"UNAVAILABLE"}}""", events[2]);
        Assert.Equal("[DONE]", events[3]);
        Assert.Equal(4, events.Count);
        Assert.True(translator.Finished);
        Assert.True(translator.Failed);
        Assert.Equal(new TokenUsage(40, 1, 0), translator.Usage);
        var forwarded = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("cl100k_base").CountTokens("Partial");
        Assert.Equal(forwarded, translator.CountedOutputTokens());
        Assert.Equal(Math.Max(1, forwarded), translator.BillableUsage(endedCleanly: false)!.Value.CompletionTokens);
    }

    [Fact]
    public void Stream_closed_before_a_finish_reason_is_not_finished()
    {
        var translator = GeminiAdapter.Instance.CreateStreamTranslator(Call("""{"model":"m","messages":[]}"""));
        var cut = FakeGemini.TextStream[..FakeGemini.TextStream.LastIndexOf("data: ", StringComparison.Ordinal)];

        var events = Run(translator, cut);

        Assert.False(translator.Finished);
        Assert.DoesNotContain("[DONE]", events);
        Assert.Equal(40, translator.Usage!.Value.PromptTokens);
    }

    [Fact]
    public void Error_envelope_gives_its_message_also_inside_an_array()
    {
        Assert.Equal("* GenerateContentRequest.contents: contents is not specified\n", GeminiAdapter.Instance.ReadErrorMessage(Encoding.UTF8.GetBytes(FakeGemini.BadRequestError)));
        Assert.Equal("quota", GeminiAdapter.Instance.ReadErrorMessage("""[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]"""u8));
    }
}
