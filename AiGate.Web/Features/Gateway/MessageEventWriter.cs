using System.Buffers;
using System.Text.Json;
using AiGate.Web.Features.Models;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The stream of a translated Messages call: the provider's adapter writes OpenAI <c>chat.completion.chunk</c>
/// events into this buffer writer, as for <c>/chat/completions</c>, and each complete event is rewritten at once into
/// Anthropic's sequence on <paramref name="output"/> (the response): message_start and a ping, content_block_start /
/// content_block_delta (text_delta, input_json_delta) / content_block_stop per text or tool_use block, then
/// message_delta with the stop reason and the usage billed, and message_stop at [DONE]. An OpenAI error event (an
/// upstream error, or the relay's own ending) becomes <c>event: error</c>. Billing stays with the adapter's
/// translator: this only changes the shape of what reaches the client.
/// </summary>
internal sealed class MessageEventWriter(IBufferWriter<byte> output, ChatCall call) : ChunkEventRewriter
{
    private readonly Utf8JsonWriter _json = new(output, new JsonWriterOptions { SkipValidation = true });
    private bool _started, _ended;
    private int _blocks;        // content blocks opened so far
    private int _openBlock = -1;
    private int _openTool = -1; // the OpenAI tool_calls index the open block belongs to (-1: a text block)
    private string _stopReason = "end_turn";
    private TokenUsage? _usage;

    protected override void OnEvent(ReadOnlySpan<byte> sse)
    {
        if (_ended || !sse.StartsWith("data: "u8)) return;
        var data = sse["data: "u8.Length..];
        if (data.SequenceEqual("[DONE]"u8))
        {
            Finish();
            return;
        }
        using var document = ParseDocument(data);
        var root = document.RootElement;
        if (Property(root, "error"u8) is { ValueKind: JsonValueKind.Object } error)
        {
            var message = Property(error, "message"u8) is { ValueKind: JsonValueKind.String } m ? m.GetString()! : "The upstream provider failed mid-stream.";
            Event("error"u8, message, static (w, message) => ApiErrors.WriteAnthropicEnvelope(w, "api_error", message, null));
            _ended = true;
            return;
        }
        Start();
        // The usage chunk the adapter writes at the end (the call asks for it): what is billed, with the cached part.
        if (Property(root, "usage"u8) is { ValueKind: JsonValueKind.Object } usage && Long(usage, "prompt_tokens"u8) is { } prompt)
            _usage = new TokenUsage(prompt, Long(usage, "completion_tokens"u8) ?? 0, Long(Property(usage, "prompt_tokens_details"u8), "cached_tokens"u8) ?? 0);
        if (Property(root, "choices"u8) is not { ValueKind: JsonValueKind.Array } choices || choices.GetArrayLength() == 0) return;
        var choice = choices[0];
        var delta = Property(choice, "delta"u8);
        if (Property(delta, "content"u8) is { ValueKind: JsonValueKind.String } text && StringBytes(text) > 0)
        {
            if (_openBlock < 0 || _openTool >= 0) OpenBlock(-1, default, default);
            Event("content_block_delta"u8, (index: _openBlock, text), static (w, s) =>
            {
                w.WriteStartObject();
                w.WriteString("type"u8, "content_block_delta"u8);
                w.WriteNumber("index"u8, s.index);
                w.WriteStartObject("delta"u8);
                w.WriteString("type"u8, "text_delta"u8);
                w.WritePropertyName("text"u8);
                WriteRawString(w, s.text);
                w.WriteEndObject();
                w.WriteEndObject();
            });
        }
        if (Property(delta, "tool_calls"u8) is { ValueKind: JsonValueKind.Array } toolCalls)
            foreach (var toolCall in toolCalls.EnumerateArray())
            {
                var tool = Long(toolCall, "index"u8) is { } i ? (int)i : 0;
                var function = Property(toolCall, "function"u8);
                if (Property(toolCall, "id"u8).ValueKind == JsonValueKind.String || tool != _openTool)
                    OpenBlock(tool, Property(toolCall, "id"u8), Property(function, "name"u8));
                if (Property(function, "arguments"u8) is { ValueKind: JsonValueKind.String } arguments && StringBytes(arguments) > 0)
                    Event("content_block_delta"u8, (index: _openBlock, arguments), static (w, s) =>
                    {
                        w.WriteStartObject();
                        w.WriteString("type"u8, "content_block_delta"u8);
                        w.WriteNumber("index"u8, s.index);
                        w.WriteStartObject("delta"u8);
                        w.WriteString("type"u8, "input_json_delta"u8);
                        w.WritePropertyName("partial_json"u8);
                        WriteRawString(w, s.arguments);
                        w.WriteEndObject();
                        w.WriteEndObject();
                    });
            }
        if (Property(choice, "finish_reason"u8) is { ValueKind: JsonValueKind.String } finish) _stopReason = MessagesTranslation.StopReason(finish.GetString());
    }

    private void Start()
    {
        if (_started) return;
        _started = true;
        // The prompt as we counted it: the provider's count comes with the usage in message_delta.
        Event("message_start"u8, call, static (w, call) =>
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "message_start"u8);
            w.WriteStartObject("message"u8);
            w.WriteString("id"u8, call.CompletionId);
            w.WriteString("type"u8, "message"u8);
            w.WriteString("role"u8, "assistant"u8);
            w.WriteString("model"u8, call.Model.Id);
            w.WriteStartArray("content"u8);
            w.WriteEndArray();
            w.WriteNull("stop_reason"u8);
            w.WriteNull("stop_sequence"u8);
            w.WriteStartObject("usage"u8);
            w.WriteNumber("input_tokens"u8, call.PromptTokens);
            w.WriteNumber("output_tokens"u8, 0);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        });
        Event("ping"u8, 0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "ping"u8);
            w.WriteEndObject();
        });
    }

    /// <summary>Closes the open block and opens the next: text (<paramref name="tool"/> -1) or a tool_use.</summary>
    private void OpenBlock(int tool, JsonElement id, JsonElement name)
    {
        CloseBlock();
        _openBlock = _blocks++;
        _openTool = tool;
        Event("content_block_start"u8, (index: _openBlock, tool, id, name), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "content_block_start"u8);
            w.WriteNumber("index"u8, s.index);
            w.WriteStartObject("content_block"u8);
            if (s.tool < 0)
            {
                w.WriteString("type"u8, "text"u8);
                w.WriteString("text"u8, ""u8);
            }
            else
            {
                w.WriteString("type"u8, "tool_use"u8);
                if (s.id.ValueKind == JsonValueKind.String)
                {
                    w.WritePropertyName("id"u8);
                    WriteRawString(w, s.id);
                }
                else w.WriteString("id"u8, NewToolCallId());
                w.WritePropertyName("name"u8);
                WriteRawString(w, s.name);
                w.WriteStartObject("input"u8);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    private void CloseBlock()
    {
        if (_openBlock < 0) return;
        Event("content_block_stop"u8, _openBlock, static (w, index) =>
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "content_block_stop"u8);
            w.WriteNumber("index"u8, index);
            w.WriteEndObject();
        });
        _openBlock = -1;
        _openTool = -1;
    }

    /// <summary>[DONE]: the last block closes, message_delta carries the stop reason and the usage, message_stop ends it.</summary>
    private void Finish()
    {
        Start();
        CloseBlock();
        _ended = true;
        var usage = _usage ?? new TokenUsage(call.PromptTokens, 0);
        Event("message_delta"u8, (_stopReason, usage), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "message_delta"u8);
            w.WriteStartObject("delta"u8);
            w.WriteString("stop_reason"u8, s._stopReason);
            w.WriteNull("stop_sequence"u8);
            w.WriteEndObject();
            w.WritePropertyName("usage"u8);
            MessagesTranslation.Usage(s.usage).WriteTo(w);
            w.WriteEndObject();
        });
        Event("message_stop"u8, 0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "message_stop"u8);
            w.WriteEndObject();
        });
    }

    private void Event<TState>(ReadOnlySpan<byte> name, TState state, Action<Utf8JsonWriter, TState> write)
    {
        output.Write("event: "u8);
        output.Write(name);
        output.Write("\ndata: "u8);
        _json.Reset(output);
        write(_json, state);
        _json.Flush();
        output.Write("\n\n"u8);
    }
}
