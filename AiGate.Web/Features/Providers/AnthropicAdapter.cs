using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// Anthropic's Messages API (<c>POST /v1/messages</c>), translated both ways. System and developer
/// messages become the top-level <c>system</c>; tool calls and results become <c>tool_use</c> and
/// <c>tool_result</c> blocks; consecutive messages of one role are merged into one turn (the API wants
/// alternating turns, and tool results for one assistant turn in one user turn). Usage: OpenAI's
/// <c>prompt_tokens</c> counts every input token, so it is input + cache read + cache write.
/// </summary>
public sealed class AnthropicAdapter : ProviderAdapter
{
    public static readonly AnthropicAdapter Instance = new();
    private const string ApiVersion = "2023-06-01";

    /// <summary>Anthropic's Messages API writes one message per request: routes here skip calls with n &gt; 1.</summary>
    public override bool SupportsChoices => false;

    public override HttpRequestMessage CreateChatRequest(Provider provider, ChatCall call, string upstreamModel, string? apiKey) =>
        Post(provider.Url("v1/messages"), BuildRequest(call, upstreamModel), call.Stream, headers =>
        {
            headers.TryAddWithoutValidation("x-api-key", apiKey);
            headers.TryAddWithoutValidation("anthropic-version", ApiVersion);
        });

    /// <summary>GET /v1/models (Anthropic Models API); one model is enough for a probe.</summary>
    public override HttpRequestMessage CreateModelsRequest(Provider provider, string? apiKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, provider.Url("v1/models?limit=1"));
        request.Headers.TryAddWithoutValidation("x-api-key", apiKey);
        request.Headers.TryAddWithoutValidation("anthropic-version", ApiVersion);
        return request;
    }

    internal static JsonObject BuildRequest(ChatCall call, string upstreamModel)
    {
        var body = call.Body;
        var system = new JsonArray();
        var turns = new Turns("content");

        foreach (var node in (JsonArray)body["messages"]!)
        {
            var message = (JsonObject)node!;
            switch (Str(message["role"]))
            {
                case "system" or "developer":
                    var instruction = Text(message["content"]);
                    if (instruction.Length > 0) system.Add(TextBlock(instruction));
                    break;
                case "user":
                    turns.Add("user", ContentBlocks(message["content"]));
                    break;
                case "assistant":
                    var blocks = ContentBlocks(message["content"]);
                    if (message["tool_calls"] is JsonArray calls)
                        foreach (var c in calls)
                            if (c is JsonObject toolCall && toolCall["function"] is JsonObject function)
                                blocks.Add(new JsonObject
                                {
                                    ["type"] = "tool_use",
                                    ["id"] = Str(toolCall["id"]) ?? NewToolCallId(),
                                    ["name"] = Str(function["name"]) ?? "",
                                    ["input"] = ArgumentsObject(function["arguments"]),
                                });
                    turns.Add("assistant", blocks);
                    break;
                case "tool":
                    turns.Add("user", [new JsonObject
                    {
                        ["type"] = "tool_result",
                        ["tool_use_id"] = Str(message["tool_call_id"]) ?? "",
                        ["content"] = Text(message["content"]),
                    }]);
                    break;
                case "function":
                    // The deprecated function role has no call id to pair with a tool_use: pass its result on as text.
                    turns.Add("user", [TextBlock($"Result of {Str(message["name"]) ?? "function"}: {Text(message["content"])}")]);
                    break;
            }
        }

        var request = new JsonObject
        {
            ["model"] = upstreamModel,
            ["max_tokens"] = MaxTokens(call),
            ["messages"] = turns.List,
        };
        if (system.Count > 0) request["system"] = system;
        if (body["temperature"] is JsonValue temperature) request["temperature"] = temperature.DeepClone();
        if (body["top_p"] is JsonValue topP) request["top_p"] = topP.DeepClone();
        if (StopSequences(body["stop"]) is { Count: > 0 } stop) request["stop_sequences"] = stop;
        if (Str(body["user"]) is { } user) request["metadata"] = new JsonObject { ["user_id"] = user };
        if (body["tools"] is JsonArray tools && tools.Count > 0)
        {
            var translated = new JsonArray();
            foreach (var t in tools)
            {
                if (t is not JsonObject { } tool || tool["function"] is not JsonObject function) continue;
                var definition = new JsonObject { ["name"] = Str(function["name"]) ?? "" };
                if (Str(function["description"]) is { } description) definition["description"] = description;
                definition["input_schema"] = function["parameters"] is JsonObject schema
                    ? schema.DeepClone()
                    : new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
                translated.Add(definition);
            }
            request["tools"] = translated;
            if (ToolChoice(body) is { } choice) request["tool_choice"] = choice;
        }
        if (call.Stream) request["stream"] = true;
        return request;
    }

    /// <summary>Anthropic requires max_tokens: the call's limit (the client's, or the gateway's default that the reservation covers).</summary>
    private static long MaxTokens(ChatCall call) => call.MaxOutputTokens;

    private static JsonObject? ToolChoice(JsonObject body)
    {
        var parallel = body["parallel_tool_calls"]?.GetValueKind() != JsonValueKind.False;
        JsonObject? choice = body["tool_choice"] switch
        {
            JsonValue v when Str(v) == "none" => new JsonObject { ["type"] = "none" },
            JsonValue v when Str(v) == "required" => new JsonObject { ["type"] = "any" },
            JsonObject o when o["function"] is JsonObject f && Str(f["name"]) is { } name => new JsonObject { ["type"] = "tool", ["name"] = name },
            JsonValue v when Str(v) == "auto" => new JsonObject { ["type"] = "auto" },
            _ => null,
        };
        if (!parallel && Str(choice?["type"]) != "none")
        {
            choice ??= new JsonObject { ["type"] = "auto" };
            choice["disable_parallel_tool_use"] = true;
        }
        return choice;
    }

    private static JsonObject TextBlock(string text) => new() { ["type"] = "text", ["text"] = text };

    /// <summary>OpenAI content (a string or parts) → Anthropic blocks. Empty text is dropped: the API rejects empty text blocks.</summary>
    private static JsonArray ContentBlocks(JsonNode? content)
    {
        var blocks = new JsonArray();
        if (content is JsonValue v && v.TryGetValue<string>(out var s))
        {
            if (s.Length > 0) blocks.Add(TextBlock(s));
            return blocks;
        }
        if (content is not JsonArray parts) return blocks;
        foreach (var p in parts)
        {
            if (p is not JsonObject part) continue;
            switch (Str(part["type"]))
            {
                case "text" when Str(part["text"]) is { Length: > 0 } text:
                    blocks.Add(TextBlock(text));
                    break;
                case "image_url" when ImageUrl(part) is { } url:
                    blocks.Add(new JsonObject
                    {
                        ["type"] = "image",
                        ["source"] = TryParseDataUrl(url, out var mediaType, out var data)
                            ? new JsonObject { ["type"] = "base64", ["media_type"] = mediaType, ["data"] = data }
                            : new JsonObject { ["type"] = "url", ["url"] = url },
                    });
                    break;
            }
        }
        return blocks;
    }

    public override ChatCompletionResult ReadChatCompletion(ReadOnlySpan<byte> body, ChatCall call)
    {
        using var document = ParseDocument(body);
        var root = document.RootElement;
        if (Property(root, "content"u8) is not { ValueKind: JsonValueKind.Array } content)
            throw new UpstreamProtocolException("The Anthropic answer has no content array.");

        string? text = null;
        var toolCalls = new JsonArray();
        foreach (var block in content.EnumerateArray())
        {
            var type = Property(block, "type"u8);
            if (type.ValueEquals("text"u8)) text += Property(block, "text"u8).GetString();
            else if (type.ValueEquals("tool_use"u8))
                toolCalls.Add(ToolCall(Property(block, "id"u8).GetString() ?? NewToolCallId(), Property(block, "name"u8).GetString() ?? "",
                    Property(block, "input"u8) is { ValueKind: JsonValueKind.Object } input ? input.GetRawText() : "{}"));
        }
        var finish = FinishReason(Property(root, "stop_reason"u8).ValueKind == JsonValueKind.String ? Property(root, "stop_reason"u8).GetString() : null);
        var response = Completion(call, [Choice(0, text, toolCalls, finish)]);
        var usage = Property(root, "usage"u8);
        return new ChatCompletionResult(response, ReadUsage(usage, Long(usage, "output_tokens"u8)));
    }

    internal static string FinishReason(string? stopReason) => stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",   // end_turn, stop_sequence, pause_turn
    };

    /// <summary>Anthropic's usage → ours: every input token (uncached, cache read, cache write) is a prompt token; reads are the cached part.</summary>
    private static TokenUsage? ReadUsage(JsonElement usage, long? outputTokens)
    {
        if (Long(usage, "input_tokens"u8) is not { } input || outputTokens is not { } output) return null;
        var read = Long(usage, "cache_read_input_tokens"u8) ?? 0;
        var written = Long(usage, "cache_creation_input_tokens"u8) ?? 0;
        return new TokenUsage(input + read + written, output, read);
    }

    public override ChatStreamTranslator CreateStreamTranslator(ChatCall call) => new Translator(call);

    /// <summary><c>{"type":"error","error":{"type":"invalid_request_error","message":"…"}}</c> → the message.</summary>
    public override string? ReadErrorMessage(ReadOnlySpan<byte> body)
    {
        try
        {
            using var document = ParseDocument(body);
            return Property(Property(document.RootElement, "error"u8), "message"u8) is { ValueKind: JsonValueKind.String } m ? m.GetString() : null;
        }
        catch (UpstreamProtocolException)
        {
            return null;
        }
    }

    /// <summary>
    /// Anthropic's event sequence → OpenAI chunks: message_start (input usage) → role chunk;
    /// content_block_start/delta for text and tool_use → content and tool_calls deltas (tool calls are
    /// numbered among tool blocks only, as OpenAI does); message_delta (stop reason, cumulative usage);
    /// message_stop → finish chunk, usage chunk, [DONE]. An error event ends the stream with an
    /// OpenAI-shaped error (RELIABILITY F3). Each event is parsed once.
    /// </summary>
    internal sealed class Translator(ChatCall call) : ChatStreamTranslator(call)
    {
        private const int TextBlock = -1, IgnoredBlock = -2;
        private readonly List<int> _toolIndexByBlock = [];
        private int _toolCalls;
        private long? _input, _output;
        private long _cacheRead, _cacheWrite;
        private string? _stopReason;

        public override void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output)
        {
            if (Finished) return;
            using var document = ParseDocument(data);
            var root = document.RootElement;
            var type = eventName.IsEmpty ? Property(root, "type"u8) : default;   // the event: line names it; the data's type is the fallback
            if (Is(eventName, type, "content_block_delta"u8)) OnDelta(root, output);
            else if (Is(eventName, type, "content_block_start"u8)) OnBlockStart(root, output);
            else if (Is(eventName, type, "message_start"u8))
            {
                var usage = Property(Property(root, "message"u8), "usage"u8);
                TakeUsage(usage);
                WriteRoleChunk(output, Call, 0);
            }
            else if (Is(eventName, type, "message_delta"u8))
            {
                if (Property(Property(root, "delta"u8), "stop_reason"u8) is { ValueKind: JsonValueKind.String } reason) _stopReason = reason.GetString();
                TakeUsage(Property(root, "usage"u8));   // cumulative counts: the latest wins
            }
            else if (Is(eventName, type, "message_stop"u8))
            {
                WriteFinishChunk(output, Call, 0, FinishReason(_stopReason));
                WriteEnd(output, Call, BillableUsage(endedCleanly: true));   // the usage chunk shows what is billed
                Finished = true;
            }
            else if (Is(eventName, type, "error"u8))
            {
                var error = Property(root, "error"u8);
                var message = Property(error, "message"u8) is { ValueKind: JsonValueKind.String } m ? m.GetString()! : "The upstream provider failed mid-stream.";
                var code = Property(error, "type"u8) is { ValueKind: JsonValueKind.String } t ? t.GetString() : null;
                output.WriteErrorAndDone(message, "server_error", code);
                Finished = Failed = true;   // the error and [DONE] are written: the relay must not add another
            }
            // ping, content_block_stop and event types added later carry nothing to translate.
        }

        private static bool Is(ReadOnlySpan<byte> eventName, JsonElement type, ReadOnlySpan<byte> expected) =>
            eventName.IsEmpty ? type.ValueKind == JsonValueKind.String && type.ValueEquals(expected) : eventName.SequenceEqual(expected);

        private void OnBlockStart(JsonElement root, SseWriter output)
        {
            var index = Property(root, "index"u8).TryGetInt32(out var i) ? i : _toolIndexByBlock.Count;
            var block = Property(root, "content_block"u8);
            var type = Property(block, "type"u8);
            var kind = IgnoredBlock;
            if (type.ValueEquals("text"u8))
            {
                kind = TextBlock;
                if (Property(block, "text"u8) is { ValueKind: JsonValueKind.String } text && StringBytes(text) > 0)
                {
                    CountText(text);
                    WriteContentChunk(output, Call, 0, text);
                }
            }
            else if (type.ValueEquals("tool_use"u8))
            {
                kind = _toolCalls++;
                CountText(Property(block, "name"u8));
                output.WriteJson((Call, kind, id: Property(block, "id"u8), name: Property(block, "name"u8)), static (w, s) =>
                {
                    BeginChoiceChunk(w, s.Call, 0);
                    w.WriteStartArray("tool_calls"u8);
                    w.WriteStartObject();
                    w.WriteNumber("index"u8, s.kind);
                    w.WritePropertyName("id"u8);
                    WriteRawString(w, s.id);
                    w.WriteString("type"u8, "function"u8);
                    w.WriteStartObject("function"u8);
                    w.WritePropertyName("name"u8);
                    WriteRawString(w, s.name);
                    w.WriteString("arguments"u8, ""u8);
                    w.WriteEndObject();
                    w.WriteEndObject();
                    w.WriteEndArray();
                    EndChoiceChunk(w, null);
                });
            }
            // thinking, redacted_thinking, server tool blocks: not part of OpenAI's chat format, not forwarded
            // (thinking text is still counted, OnDelta: Anthropic bills it as output).
            while (_toolIndexByBlock.Count <= index) _toolIndexByBlock.Add(IgnoredBlock);
            _toolIndexByBlock[index] = kind;
        }

        private void OnDelta(JsonElement root, SseWriter output)
        {
            var index = Property(root, "index"u8).TryGetInt32(out var i) ? i : -1;
            var kind = index >= 0 && index < _toolIndexByBlock.Count ? _toolIndexByBlock[index] : IgnoredBlock;
            var delta = Property(root, "delta"u8);
            var type = Property(delta, "type"u8);
            if (kind == TextBlock && type.ValueEquals("text_delta"u8) && Property(delta, "text"u8) is { ValueKind: JsonValueKind.String } text)
            {
                CountText(text);
                WriteContentChunk(output, Call, 0, text);
            }
            else if (type.ValueEquals("thinking_delta"u8))
            {
                CountText(Property(delta, "thinking"u8));   // not forwarded, but produced and billed as output
            }
            else if (kind >= 0 && type.ValueEquals("input_json_delta"u8)
                && Property(delta, "partial_json"u8) is { ValueKind: JsonValueKind.String } json && StringBytes(json) > 0)
            {
                CountText(json);
                output.WriteJson((Call, kind, json), static (w, s) =>
                {
                    BeginChoiceChunk(w, s.Call, 0);
                    w.WriteStartArray("tool_calls"u8);
                    w.WriteStartObject();
                    w.WriteNumber("index"u8, s.kind);
                    w.WriteStartObject("function"u8);
                    w.WritePropertyName("arguments"u8);
                    WriteRawString(w, s.json);
                    w.WriteEndObject();
                    w.WriteEndObject();
                    w.WriteEndArray();
                    EndChoiceChunk(w, null);
                });
            }
        }

        private void TakeUsage(JsonElement usage)
        {
            if (usage.ValueKind != JsonValueKind.Object) return;
            _input = Long(usage, "input_tokens"u8) ?? _input;
            _output = Long(usage, "output_tokens"u8) ?? _output;
            _cacheRead = Long(usage, "cache_read_input_tokens"u8) ?? _cacheRead;
            _cacheWrite = Long(usage, "cache_creation_input_tokens"u8) ?? _cacheWrite;
            if (_input is { } input && _output is { } output) Usage = new TokenUsage(input + _cacheRead + _cacheWrite, output, _cacheRead);
        }
    }
}
