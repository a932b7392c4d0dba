using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// What the translating adapters (Anthropic, Gemini) share: reading OpenAI request parts, building
/// the non-streamed <c>chat.completion</c>, and writing <c>chat.completion.chunk</c> events straight
/// into the response with the JSON writer (one call per chunk, no strings, no nodes).
/// </summary>
internal static class ChatTranslation
{
    /// <summary>A message's text: a string, or its <c>text</c> parts joined (other part kinds are skipped).</summary>
    public static string Text(JsonNode? content)
    {
        if (content is JsonValue v && v.TryGetValue<string>(out var s)) return s;
        if (content is not JsonArray parts) return "";
        var text = new StringBuilder();
        foreach (var part in parts)
            if (part is JsonObject p && Str(p["type"]) == "text" && Str(p["text"]) is { } t) text.Append(t);
        return text.ToString();
    }

    public static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>The URL of an <c>image_url</c> part (<c>{"url": …}</c>, or a bare string as some clients send).</summary>
    public static string? ImageUrl(JsonObject part) => part["image_url"] switch
    {
        JsonObject o => Str(o["url"]),
        var other => Str(other),
    };

    /// <summary>Splits <c>data:image/png;base64,AAAA</c> into its media type and base64 payload.</summary>
    public static bool TryParseDataUrl(string url, out string mediaType, out string base64)
    {
        mediaType = base64 = "";
        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase)) return false;
        var comma = url.IndexOf(',');
        if (comma < 0) return false;
        var header = url.AsSpan(5, comma - 5);
        const string marker = ";base64";
        if (!header.EndsWith(marker, StringComparison.OrdinalIgnoreCase)) return false;
        mediaType = header[..^marker.Length].ToString();
        base64 = url[(comma + 1)..];
        return mediaType.Length > 0;
    }

    /// <summary>A tool call's <c>arguments</c> string as a JSON object ({} when empty or not an object).</summary>
    public static JsonObject ArgumentsObject(JsonNode? arguments)
    {
        var text = Str(arguments);
        if (string.IsNullOrWhiteSpace(text)) return [];
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? [];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    /// <summary><c>stop</c> as a list: a string or an array of strings.</summary>
    public static JsonArray? StopSequences(JsonNode? stop) => stop switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => [s],
        JsonArray a => [.. a.Select(x => Str(x)).Where(x => x is not null).Select(x => (JsonNode)x!)],
        _ => null,
    };

    public static HttpRequestMessage Post(Uri url, JsonObject body, bool stream, Action<HttpRequestHeaders> authenticate)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = UpstreamContent.Json(JsonSerializer.SerializeToUtf8Bytes(body)) };
        authenticate(request.Headers);
        if (stream) request.Headers.TryAddWithoutValidation("Accept", "text/event-stream");
        return request;
    }

    /// <summary>An OpenAI <c>chat.completion</c> with our id, time and public model name (usage is added by the endpoint).</summary>
    public static JsonObject Completion(ChatCall call, JsonArray choices) => new()
    {
        ["id"] = call.CompletionId,
        ["object"] = "chat.completion",
        ["created"] = call.Created,
        ["model"] = call.Model.Id,
        ["choices"] = choices,
    };

    public static JsonObject Choice(int index, string? content, JsonArray? toolCalls, string finishReason)
    {
        var message = new JsonObject { ["role"] = "assistant", ["content"] = content };
        if (toolCalls is { Count: > 0 }) message["tool_calls"] = toolCalls;
        return new JsonObject { ["index"] = index, ["message"] = message, ["logprobs"] = null, ["finish_reason"] = finishReason };
    }

    public static JsonObject ToolCall(string id, string name, string arguments) => new()
    {
        ["id"] = id,
        ["type"] = "function",
        ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments },
    };

    public static string NewToolCallId() => "call_" + Guid.NewGuid().ToString("N")[..24];

    // ---- streamed chunks: {"id","object":"chat.completion.chunk","created","model","choices":[{"index","delta":{…},"finish_reason"}]}

    /// <summary>Writes the chunk's envelope up to the inside of <c>delta</c>; close it with <see cref="EndChoiceChunk"/>.</summary>
    public static void BeginChoiceChunk(Utf8JsonWriter w, ChatCall call, int choiceIndex)
    {
        BeginChunk(w, call);
        w.WriteStartArray("choices"u8);
        w.WriteStartObject();
        w.WriteNumber("index"u8, choiceIndex);
        w.WriteStartObject("delta"u8);
    }

    public static void EndChoiceChunk(Utf8JsonWriter w, string? finishReason)
    {
        w.WriteEndObject();
        if (finishReason is null) w.WriteNull("finish_reason"u8); else w.WriteString("finish_reason"u8, finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static void WriteRoleChunk(SseWriter output, ChatCall call, int choiceIndex) =>
        output.WriteJson((call, choiceIndex), static (w, s) =>
        {
            BeginChoiceChunk(w, s.call, s.choiceIndex);
            w.WriteString("role"u8, "assistant"u8);
            w.WriteString("content"u8, ""u8);
            EndChoiceChunk(w, null);
        });

    /// <summary>A text delta whose value is a JSON string element from the upstream event (written without a .NET string).</summary>
    public static void WriteContentChunk(SseWriter output, ChatCall call, int choiceIndex, JsonElement text) =>
        output.WriteJson((call, choiceIndex, text), static (w, s) =>
        {
            BeginChoiceChunk(w, s.call, s.choiceIndex);
            w.WritePropertyName("content"u8);
            WriteRawString(w, s.text);
            EndChoiceChunk(w, null);
        });

    public static void WriteFinishChunk(SseWriter output, ChatCall call, int choiceIndex, string finishReason) =>
        output.WriteJson((call, choiceIndex, finishReason), static (w, s) =>
        {
            BeginChoiceChunk(w, s.call, s.choiceIndex);
            EndChoiceChunk(w, s.finishReason);
        });

    /// <summary>The usage-only chunk (<c>choices: []</c>) that <c>stream_options.include_usage</c> asks for, with our cost.</summary>
    public static void WriteUsageChunk(SseWriter output, ChatCall call, TokenUsage usage) =>
        output.WriteJson((call, usage), static (w, s) =>
        {
            BeginChunk(w, s.call);
            w.WriteStartArray("choices"u8);
            w.WriteEndArray();
            w.WritePropertyName("usage"u8);
            UsageJson.Create(s.usage, s.call.Pricing.CostMicros(s.usage)).WriteTo(w);
            w.WriteEndObject();
        });

    /// <summary>The normal end of a translated stream: the usage chunk when asked for, then [DONE].</summary>
    public static void WriteEnd(SseWriter output, ChatCall call, TokenUsage? usage)
    {
        if (call.ClientWantsUsage && usage is { } u) WriteUsageChunk(output, call, u);
        output.WriteDone();
    }

    private static void BeginChunk(Utf8JsonWriter w, ChatCall call)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, call.CompletionId);
        w.WriteString("object"u8, "chat.completion.chunk"u8);
        w.WriteNumber("created"u8, call.Created);
        w.WriteString("model"u8, call.Model.Id);
    }

    /// <summary>A non-negative integer property, or null when missing or not one.</summary>
    public static long? Long(JsonElement parent, ReadOnlySpan<byte> name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.Number
            && e.TryGetInt64(out var l) && l >= 0 ? l : null;

    public static JsonElement Property(JsonElement parent, ReadOnlySpan<byte> name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var e) ? e : default;

    /// <summary>
    /// Writes a string element exactly as the upstream escaped it (no decode and re-encode per chunk).
    /// The document parser checked its JSON syntax; its UTF-8 is checked here, so invalid bytes become a
    /// protocol error (a clean error event for the client) instead of reaching it (RELIABILITY Z4).
    /// </summary>
    public static void WriteRawString(Utf8JsonWriter w, JsonElement text)
    {
        if (text.ValueKind != JsonValueKind.String)
        {
            w.WriteStringValue(""u8);
            return;
        }
        var raw = JsonMarshal.GetRawUtf8Value(text);
        if (!System.Text.Unicode.Utf8.IsValid(raw)) throw new UpstreamProtocolException("The upstream sent text that is not UTF-8.");
        w.WriteRawValue(raw, skipInputValidation: true);
    }

    /// <summary>Bytes of a string element as sent (escaped form, without quotes): the cheap measure of forwarded text.</summary>
    public static int StringBytes(JsonElement text) => Math.Max(0, JsonMarshal.GetRawUtf8Value(text).Length - 2);

    public static JsonDocument ParseDocument(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            return JsonDocument.ParseValue(ref reader);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException)
        {
            throw new UpstreamProtocolException("The upstream sent JSON that does not parse.");
        }
    }
}

/// <summary>
/// The conversation as Anthropic and Gemini want it: turns that alternate by role, so consecutive items
/// of one role (an assistant text then its tool calls, several tool results) merge into one turn.
/// </summary>
internal sealed class Turns(string itemsProperty)
{
    private JsonObject? _last;

    public JsonArray List { get; } = [];

    public void Add(string role, JsonArray items)
    {
        if (items.Count == 0) return;
        if (_last is not null && ChatTranslation.Str(_last["role"]) == role)
        {
            var merged = (JsonArray)_last[itemsProperty]!;
            foreach (var item in items.ToArray())
            {
                items.Remove(item);
                merged.Add(item);
            }
            return;
        }
        _last = new JsonObject { ["role"] = role, [itemsProperty] = items };
        List.Add(_last);
    }
}
