using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// Writes server-sent events straight into the response's buffer (the PipeWriter), with no strings:
/// <c>data: {json}\n\n</c>. The relay flushes after each batch read from the upstream. With
/// <paramref name="anthropicEvents"/> (Anthropic's Messages stream) an error is Anthropic's <c>event: error</c>, with no [DONE].
/// </summary>
public sealed class SseWriter(IBufferWriter<byte> output, bool anthropicEvents = false)
{
    // Made on the first event written as JSON: a stream passed through byte for byte never needs one (issue 16: an open
    // stream's footprint).
    private Utf8JsonWriter? _json;

    public long EventsWritten { get; private set; }

    /// <summary>An event whose data is already JSON (passed through byte for byte).</summary>
    public void WriteData(ReadOnlySpan<byte> data)
    {
        output.Write("data: "u8);
        output.Write(data);
        output.Write("\n\n"u8);
        EventsWritten++;
    }

    /// <summary>An event with its <c>event:</c> name (none when empty) and its data, passed through byte for byte.</summary>
    public void WriteEvent(ReadOnlySpan<byte> name, ReadOnlySpan<byte> data)
    {
        if (!name.IsEmpty)
        {
            output.Write("event: "u8);
            output.Write(name);
            output.Write("\n"u8);
        }
        WriteData(data);
    }

    public void WriteJson(JsonNode node) => WriteJson(node, static (json, node) => node.WriteTo(json));

    /// <summary>An event built with the JSON writer.</summary>
    public void WriteJson<TState>(TState state, Action<Utf8JsonWriter, TState> write)
    {
        output.Write("data: "u8);
        var json = _json ??= new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true });
        json.Reset(output);
        write(json, state);
        json.Flush();
        output.Write("\n\n"u8);
        EventsWritten++;
    }

    public void WriteDone()
    {
        output.Write("data: [DONE]\n\n"u8);
        EventsWritten++;
    }

    /// <summary>An OpenAI-shaped error inside a stream that already started (RELIABILITY F3): then [DONE].</summary>
    public void WriteErrorAndDone(string message, string type = "server_error", string? code = null)
    {
        if (anthropicEvents)
        {
            // Anthropic's own error types (overloaded_error…) pass on; our failures are api_error.
            var anthropicType = code is not null && code.EndsWith("_error", StringComparison.Ordinal) ? code : "api_error";
            output.Write("event: error\n"u8);
            WriteJson((message, anthropicType), static (w, s) => ApiErrors.WriteAnthropicEnvelope(w, s.anthropicType, s.message, null));
            return;
        }
        WriteJson((message, type, code), static (w, s) => ApiErrors.WriteEnvelope(w, s.message, s.type, s.code, null));
        WriteDone();
    }
}

/// <summary>OpenAI's usage object, with our cost added (<c>usage.cost</c> in USD, as OpenRouter does).</summary>
public static class UsageJson
{
    public static JsonObject Create(TokenUsage usage, long costMicros) => new()
    {
        ["prompt_tokens"] = usage.PromptTokens,
        ["completion_tokens"] = usage.CompletionTokens,
        ["total_tokens"] = usage.TotalTokens,
        ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = usage.CachedTokens },
        ["cost"] = ModelPricing.MicrosToUsd(costMicros),
    };

    /// <summary>Reads OpenAI's usage object; null when it is missing or nonsensical (negative counts).</summary>
    public static TokenUsage? Read(JsonNode? usage)
    {
        if (usage is not JsonObject u) return null;
        var prompt = ReadLong(u["prompt_tokens"]) ?? ReadLong(u["input_tokens"]);
        var completion = ReadLong(u["completion_tokens"]) ?? ReadLong(u["output_tokens"]) ?? 0;
        var cached = ReadLong(u["prompt_tokens_details"]?["cached_tokens"]) ?? 0;
        if (prompt is null || prompt < 0 || completion < 0 || cached < 0) return null;
        return new TokenUsage(prompt.Value, completion, cached);
    }

    internal static long? ReadLong(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<long>(out var l) ? l
        : node is JsonValue d && d.TryGetValue<double>(out var x) && x == Math.Floor(x) && x is >= 0 and < long.MaxValue ? (long)x
        : null;
}
