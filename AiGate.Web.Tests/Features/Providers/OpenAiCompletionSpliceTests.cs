using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>
/// The byte splice that relays OpenAI answers without a DOM must answer exactly what the DOM path answers (the
/// provider's object with our model and usage), read the same usage and measure the same answer text; anything it
/// is not sure of goes back to the DOM path.
/// </summary>
public sealed class OpenAiCompletionSpliceTests
{
    private const string Model = "openai/gpt-4o-mini";
    private static readonly TokenUsage Billed = new(11, 7, 3);

    public static TheoryData<string> Answers => new()
    {
        """{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}""",
        """{"usage":{"prompt_tokens":11,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0}},"model":"x","choices":[]}""",
        """{"id":"c2","choices":[{"message":{"content":"no usage, no model"}}]}""",
        """{"id":"c3","model":"m","usage":null,"choices":[{"message":{"content":"caf\u00e9 \"quoted\" \ud83d\ude00"}}]}""",
        """{"id":"c4","model":"m","choices":[{"message":{"content":null,"refusal":"I can't","tool_calls":[{"id":"t","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],"usage":{"input_tokens":5,"output_tokens":2.0}}""",
        """  {"model":"m","choices":[{"message":{"content":"a"}},{"message":{"content":"bb"}}],"usage":{"prompt_tokens":-1,"completion_tokens":2}}  """,
        """{"model":{"nested":"object"},"usage":"not an object","choices":[{"message":{"content":"ok"}}],"extra":[1,2,{"usage":{"prompt_tokens":99}}]}""",
    };

    [Theory]
    [MemberData(nameof(Answers))]
    public void The_splice_answers_what_the_DOM_path_answers_and_reads_the_same_usage_and_text(string answer)
    {
        var bytes = Encoding.UTF8.GetBytes(answer);
        var splice = OpenAiCompletionSplice.TryScan(bytes);
        Assert.NotNull(splice);

        var dom = JsonNode.Parse(bytes)!.AsObject();
        Assert.Equal(UsageJson.Read(dom["usage"]), splice.Usage);
        Assert.Equal(AnswerBytes(dom), splice.AnswerBytes);

        dom["model"] = Model;
        dom["usage"] = UsageJson.Create(Billed, 1234);
        var output = new ArrayBufferWriter<byte>();
        splice.WriteTo(output, Model, Billed, 1234);
        Assert.True(JsonNode.DeepEquals(dom, JsonNode.Parse(output.WrittenSpan)), Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Theory]
    [InlineData("""{"model":"a","model":"b","choices":[]}""")]
    [InlineData("""{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":1000},"choices":[]}""")]
    [InlineData("""{"usage":{"prompt_tokens":1,"prompt_tokens":1000},"choices":[]}""")]
    [InlineData("""{"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":0,"cached_tokens":5}}}""")]
    [InlineData("""{"choices":[]} trailing""")]
    [InlineData("""[{"choices":[]}]""")]
    [InlineData("""{}""")]
    [InlineData("""not json""")]
    public void What_the_splice_is_not_sure_of_goes_to_the_DOM_path(string answer) =>
        Assert.Null(OpenAiCompletionSplice.TryScan(Encoding.UTF8.GetBytes(answer)));

    /// <summary>UTF-8 bytes of content, refusal and tool call names and arguments, from the DOM, unescaped.</summary>
    private static long AnswerBytes(JsonObject completion)
    {
        long total = 0;
        if (completion["choices"] is not JsonArray choices) return 0;
        foreach (var choice in choices)
        {
            if (choice?["message"] is not JsonObject message) continue;
            total += Bytes(message["content"]) + Bytes(message["refusal"]);
            if (message["tool_calls"] is JsonArray calls)
                foreach (var call in calls) total += Bytes(call?["function"]?["name"]) + Bytes(call?["function"]?["arguments"]);
        }
        return total;

        static long Bytes(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? Encoding.UTF8.GetByteCount(s) : 0;
    }
}
