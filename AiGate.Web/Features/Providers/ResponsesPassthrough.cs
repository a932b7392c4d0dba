using System.Text.Json;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// An OpenAI Responses stream relayed to a <c>/responses</c> client as the provider sent it: every event goes out with
/// its own name and data bytes, untouched. On the way it keeps what billing needs: the usage of the terminal event
/// (response.completed, response.incomplete, response.failed: <c>response.usage</c>, input including its cached part),
/// and our count of the text, refusals, reasoning and function arguments the model streamed, for a stream that breaks
/// before its usage. The Responses stream has no [DONE]: its terminal event ends it.
/// </summary>
public sealed class ResponsesPassthrough(ChatCall call) : ChatStreamTranslator(call)
{
    public override void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output)
    {
        if (Finished || data.IsEmpty || data.SequenceEqual("[DONE]"u8)) return;
        using var document = ParseDocument(data);   // a malformed event ends the stream with an error (RELIABILITY Z4)
        var root = document.RootElement;
        var type = Property(root, "type"u8);
        if (type.ValueKind != JsonValueKind.String) type = default;
        if (Is(type, "response.output_text.delta"u8) || Is(type, "response.function_call_arguments.delta"u8) || Is(type, "response.refusal.delta"u8)
            || Is(type, "response.reasoning_text.delta"u8) || Is(type, "response.reasoning_summary_text.delta"u8))
            CountText(Property(root, "delta"u8));
        else if (Is(type, "response.completed"u8) || Is(type, "response.incomplete"u8))
        {
            TakeUsage(Property(Property(root, "response"u8), "usage"u8));
            Finished = true;
        }
        else if (Is(type, "response.failed"u8) || Is(type, "error"u8))
        {
            TakeUsage(Property(Property(root, "response"u8), "usage"u8));
            Finished = Failed = true;   // passed on below: the client sees the provider's own failure event
        }
        output.WriteEvent(eventName, data);
    }

    private static bool Is(JsonElement type, ReadOnlySpan<byte> expected) => type.ValueKind == JsonValueKind.String && type.ValueEquals(expected);

    private void TakeUsage(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object || Long(usage, "input_tokens"u8) is not { } input || Long(usage, "output_tokens"u8) is not { } produced) return;
        var cached = Long(Property(usage, "input_tokens_details"u8), "cached_tokens"u8) ?? 0;
        Usage = new TokenUsage(input, produced, Math.Min(cached, input));
    }
}
