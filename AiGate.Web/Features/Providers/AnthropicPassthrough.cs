using System.Text.Json;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// An Anthropic Messages stream relayed to a Messages client as Anthropic sent it: every event (message_start …
/// message_stop, ping, error, and types added later) goes out with its own name and data bytes, untouched. On the
/// way it keeps what billing needs, as <see cref="AnthropicAdapter"/>'s translator does: the usage of message_start
/// and message_delta (cumulative, the latest wins; input + cache reads + cache writes are the prompt), and our count
/// of the text, thinking and tool input the model produced, for a stream that breaks before its last usage.
/// </summary>
public sealed class AnthropicPassthrough(ChatCall call) : ChatStreamTranslator(call)
{
    private long? _input, _output;
    private long _cacheRead, _cacheWrite;

    public override void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output)
    {
        if (Finished) return;
        using var document = ParseDocument(data);   // a malformed event ends the stream with an error (RELIABILITY Z4)
        var root = document.RootElement;
        var type = Property(root, "type"u8);
        if (Is(eventName, type, "content_block_delta"u8))
        {
            var delta = Property(root, "delta"u8);
            CountText(Property(delta, "text"u8));
            CountText(Property(delta, "thinking"u8));
            CountText(Property(delta, "partial_json"u8));
        }
        else if (Is(eventName, type, "content_block_start"u8))
        {
            var block = Property(root, "content_block"u8);
            CountText(Property(block, "text"u8));
            CountText(Property(block, "name"u8));
        }
        else if (Is(eventName, type, "message_start"u8)) TakeUsage(Property(Property(root, "message"u8), "usage"u8));
        else if (Is(eventName, type, "message_delta"u8)) TakeUsage(Property(root, "usage"u8));
        else if (Is(eventName, type, "message_stop"u8)) Finished = true;
        else if (Is(eventName, type, "error"u8)) Finished = Failed = true;   // passed on below: the client sees Anthropic's own error event
        output.WriteEvent(eventName, data);
    }

    private static bool Is(ReadOnlySpan<byte> eventName, JsonElement type, ReadOnlySpan<byte> expected) =>
        eventName.IsEmpty ? type.ValueKind == JsonValueKind.String && type.ValueEquals(expected) : eventName.SequenceEqual(expected);

    private void TakeUsage(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object) return;
        _input = Long(usage, "input_tokens"u8) ?? _input;
        _output = Long(usage, "output_tokens"u8) ?? _output;
        _cacheRead = Long(usage, "cache_read_input_tokens"u8) ?? _cacheRead;
        _cacheWrite = Long(usage, "cache_creation_input_tokens"u8) ?? _cacheWrite;
        if (_input is { } input && _output is { } produced) Usage = new TokenUsage(input + _cacheRead + _cacheWrite, produced, _cacheRead);
    }
}
