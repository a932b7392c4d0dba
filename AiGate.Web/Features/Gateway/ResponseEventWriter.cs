using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The stream of a <c>/responses</c> call. Translated (<paramref name="native"/> false): the provider's adapter writes
/// OpenAI <c>chat.completion.chunk</c> events into this buffer writer, as for <c>/chat/completions</c>, and each complete
/// event is rewritten at once into the Responses sequence on <paramref name="output"/>: response.created,
/// response.in_progress, then per output item response.output_item.added, for a message response.content_part.added,
/// response.output_text.delta…, response.output_text.done, response.content_part.done, for a function call
/// response.function_call_arguments.delta… and .done, then response.output_item.done; at [DONE] response.completed (or
/// response.incomplete at the output limit) with the usage billed; every event with its <c>sequence_number</c>. Native:
/// the provider's own Responses events pass through untouched. Either way an OpenAI error event (an upstream error, or
/// the relay's own ending) becomes the Responses <c>error</c> event and [DONE] is dropped (the Responses stream has none).
/// Billing stays with the translator: this only changes the shape of what reaches the client.
/// </summary>
internal sealed class ResponseEventWriter(IBufferWriter<byte> output, JsonObject request, ChatCall call, bool native) : ChunkEventRewriter
{
    private readonly Utf8JsonWriter _json = new(output, new JsonWriterOptions { SkipValidation = true });
    private readonly ArrayBufferWriter<byte> _text = new(1024);   // the open item's text or arguments, as escaped JSON string content
    private readonly JsonArray _done = [];                         // the output items completed so far
    private bool _started, _ended;
    private long _sequence;
    private string? _itemId, _callId, _name;
    private int _openTool = -2;   // -2: no item open; -1: a message; ≥ 0: the chat tool_calls index of a function_call item
    private string? _finishReason;
    private TokenUsage? _usage;

    protected override void OnEvent(ReadOnlySpan<byte> sse)
    {
        if (_ended) return;
        if (!sse.StartsWith("data: "u8))
        {
            // A named event: only the provider's own Responses events have names here (the relay's errors do not).
            if (native)
            {
                output.Write(sse);
                output.Write("\n\n"u8);
                _sequence++;
            }
            return;
        }
        var data = sse["data: "u8.Length..];
        if (data.SequenceEqual("[DONE]"u8))
        {
            if (!native) Finish();
            return;
        }
        using var document = ParseDocument(data);
        var root = document.RootElement;
        if (Property(root, "error"u8) is { ValueKind: JsonValueKind.Object } error && Property(root, "type"u8).ValueKind != JsonValueKind.String)
        {
            WriteError(error);
            return;
        }
        if (native)
        {
            output.Write(sse);   // a compatible server's unnamed Responses event
            output.Write("\n\n"u8);
            _sequence++;
            return;
        }
        Start();
        if (Property(root, "usage"u8) is { ValueKind: JsonValueKind.Object } usage && Long(usage, "prompt_tokens"u8) is { } prompt)
            _usage = new TokenUsage(prompt, Long(usage, "completion_tokens"u8) ?? 0, Long(Property(usage, "prompt_tokens_details"u8), "cached_tokens"u8) ?? 0);
        if (Property(root, "choices"u8) is not { ValueKind: JsonValueKind.Array } choices || choices.GetArrayLength() == 0) return;
        var choice = choices[0];
        var delta = Property(choice, "delta"u8);
        if (Property(delta, "content"u8) is { ValueKind: JsonValueKind.String } text && StringBytes(text) > 0)
        {
            if (_openTool != -1) OpenMessage();
            Append(text);
            Event("response.output_text.delta"u8, text, static (w, s) =>
            {
                w.WriteNumber("content_index"u8, 0);
                w.WritePropertyName("delta"u8);
                WriteRawString(w, s);
                w.WriteStartArray("logprobs"u8);
                w.WriteEndArray();
            });
        }
        if (Property(delta, "tool_calls"u8) is { ValueKind: JsonValueKind.Array } toolCalls)
            foreach (var toolCall in toolCalls.EnumerateArray())
            {
                var tool = Long(toolCall, "index"u8) is { } i ? (int)i : 0;
                var function = Property(toolCall, "function"u8);
                if (Property(toolCall, "id"u8).ValueKind == JsonValueKind.String || tool != _openTool)
                    OpenFunctionCall(tool, Property(toolCall, "id"u8), Property(function, "name"u8));
                if (Property(function, "arguments"u8) is { ValueKind: JsonValueKind.String } arguments && StringBytes(arguments) > 0)
                {
                    Append(arguments);
                    Event("response.function_call_arguments.delta"u8, arguments, static (w, s) =>
                    {
                        w.WritePropertyName("delta"u8);
                        WriteRawString(w, s);
                    });
                }
            }
        if (Property(choice, "finish_reason"u8) is { ValueKind: JsonValueKind.String } finish) _finishReason = finish.GetString();
    }

    private void Start()
    {
        if (_started) return;
        _started = true;
        var response = ResponsesTranslation.Envelope(request, call, "in_progress", [], null);
        Event("response.created"u8, response, static (w, r) => { w.WritePropertyName("response"u8); r.WriteTo(w); }, itemScoped: false);
        Event("response.in_progress"u8, response, static (w, r) => { w.WritePropertyName("response"u8); r.WriteTo(w); }, itemScoped: false);
    }

    private void OpenMessage()
    {
        CloseItem();
        _openTool = -1;
        _itemId = ResponsesTranslation.NewItemId("msg_");
        var item = ResponsesTranslation.MessageItem(_itemId, "", "in_progress");
        ((JsonArray)item["content"]!).Clear();
        Event("response.output_item.added"u8, item, static (w, i) => { w.WritePropertyName("item"u8); i.WriteTo(w); }, itemId: false);
        Event("response.content_part.added"u8, 0, static (w, _) =>
        {
            w.WriteNumber("content_index"u8, 0);
            w.WritePropertyName("part"u8);
            ResponsesTranslation.OutputTextPart("").WriteTo(w);
        });
    }

    private void OpenFunctionCall(int tool, JsonElement id, JsonElement name)
    {
        CloseItem();
        _openTool = tool;
        _itemId = ResponsesTranslation.NewItemId("fc_");
        _callId = id.ValueKind == JsonValueKind.String ? id.GetString() : NewToolCallId();
        _name = name.ValueKind == JsonValueKind.String ? name.GetString() : "";
        var item = ResponsesTranslation.FunctionCallItem(_itemId, _callId!, _name!, "", "in_progress");
        Event("response.output_item.added"u8, item, static (w, i) => { w.WritePropertyName("item"u8); i.WriteTo(w); }, itemId: false);
    }

    /// <summary>The open item's closing events, in OpenAI's order; the item joins the output of response.completed.</summary>
    private void CloseItem()
    {
        if (_openTool == -2) return;
        var text = JsonSerializer.Deserialize<string>([(byte)'"', .. _text.WrittenSpan, (byte)'"']) ?? "";
        _text.ResetWrittenCount();
        JsonObject item;
        if (_openTool == -1)
        {
            Event("response.output_text.done"u8, text, static (w, t) =>
            {
                w.WriteNumber("content_index"u8, 0);
                w.WriteString("text"u8, t);
                w.WriteStartArray("logprobs"u8);
                w.WriteEndArray();
            });
            Event("response.content_part.done"u8, text, static (w, t) =>
            {
                w.WriteNumber("content_index"u8, 0);
                w.WritePropertyName("part"u8);
                ResponsesTranslation.OutputTextPart(t).WriteTo(w);
            });
            item = ResponsesTranslation.MessageItem(_itemId!, text, "completed");
        }
        else
        {
            Event("response.function_call_arguments.done"u8, (text, _name), static (w, s) =>
            {
                w.WriteString("name"u8, s._name);
                w.WriteString("arguments"u8, s.text);
            });
            item = ResponsesTranslation.FunctionCallItem(_itemId!, _callId!, _name!, text, "completed");
        }
        Event("response.output_item.done"u8, item, static (w, i) => { w.WritePropertyName("item"u8); i.WriteTo(w); }, itemId: false);
        _done.Add(item);
        _openTool = -2;
    }

    /// <summary>[DONE]: the last item closes, and response.completed (response.incomplete at the output limit) carries the output and the usage billed.</summary>
    private void Finish()
    {
        Start();
        CloseItem();
        _ended = true;
        var usage = _usage ?? new TokenUsage(call.PromptTokens, 0);
        var truncated = _finishReason == "length";
        var response = ResponsesTranslation.Envelope(request, call, truncated ? "incomplete" : "completed", _done,
            ResponsesTranslation.Usage(usage, call.Pricing.CostMicros(usage)), truncated ? "max_output_tokens" : null);
        Event(truncated ? "response.incomplete"u8 : "response.completed"u8, response, static (w, r) => { w.WritePropertyName("response"u8); r.WriteTo(w); },
            itemScoped: false);
    }

    private void WriteError(JsonElement error)
    {
        _ended = true;
        var message = Property(error, "message"u8) is { ValueKind: JsonValueKind.String } m ? m.GetString()! : "The upstream provider failed mid-stream.";
        var code = Property(error, "code"u8) is { ValueKind: JsonValueKind.String } c ? c.GetString() : Property(error, "type"u8) is { ValueKind: JsonValueKind.String } t ? t.GetString() : null;
        output.Write("event: error\ndata: "u8);
        _json.Reset(output);
        _json.WriteStartObject();
        _json.WriteString("type"u8, "error"u8);
        _json.WriteString("code"u8, code);
        _json.WriteString("message"u8, message);
        _json.WriteNull("param"u8);
        _json.WriteNumber("sequence_number"u8, _sequence++);
        _json.WriteEndObject();
        _json.Flush();
        output.Write("\n\n"u8);
    }

    private void Append(JsonElement text)
    {
        var raw = JsonMarshal.GetRawUtf8Value(text);
        _text.Write(raw[1..^1]);
    }

    /// <summary>
    /// One event: <c>event: type</c> and its data, an object of type, sequence_number, and for item events (<paramref name="itemScoped"/>)
    /// the output_index and, unless <paramref name="itemId"/> is false (the item itself is in the event), the item_id, then what <paramref name="write"/> adds.
    /// </summary>
    private void Event<TState>(ReadOnlySpan<byte> type, TState state, Action<Utf8JsonWriter, TState> write, bool itemScoped = true, bool itemId = true)
    {
        output.Write("event: "u8);
        output.Write(type);
        output.Write("\ndata: "u8);
        _json.Reset(output);
        _json.WriteStartObject();
        _json.WriteString("type"u8, type);
        _json.WriteNumber("sequence_number"u8, _sequence++);
        if (itemScoped)
        {
            if (itemId) _json.WriteString("item_id"u8, _itemId);
            _json.WriteNumber("output_index"u8, _done.Count);
        }
        write(_json, state);
        _json.WriteEndObject();
        _json.Flush();
        output.Write("\n\n"u8);
    }
}
