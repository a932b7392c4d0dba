using System.Buffers;
using System.Text.Json;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// A non-streamed OpenAI chat completion relayed as the provider's own bytes with two values replaced: the top-level
/// <c>model</c> (our public id) and <c>usage</c> (what we bill, with its cost). One <see cref="Utf8JsonReader"/> pass
/// finds both, reads the reported usage and measures the answer's text for the plausibility check, so the usual
/// answer is never parsed into a DOM (issue 16). Anything unusual (a duplicate <c>model</c> or <c>usage</c>, JSON
/// that is not an object, a usage field given twice) is left to the DOM path, which has the final word.
/// </summary>
public sealed class OpenAiCompletionSplice
{
    private OpenAiCompletionSplice(byte[] body) => Body = body;

    public byte[] Body { get; }
    /// <summary>The usage the provider reported, read as <c>UsageJson.Read</c> reads it; null when missing or nonsensical.</summary>
    public TokenUsage? Usage { get; private set; }
    /// <summary>UTF-8 bytes of the answer's text, refusals and tool calls (names and arguments), unescaped.</summary>
    public long AnswerBytes { get; private set; }

    private int _modelStart = -1, _modelEnd = -1, _usageStart = -1, _usageEnd = -1, _objectEnd;

    /// <summary>The splice of <paramref name="body"/>, or null when the DOM path should read it.</summary>
    public static OpenAiCompletionSplice? TryScan(byte[] body)
    {
        var splice = new OpenAiCompletionSplice(body);
        try
        {
            return splice.Scan() ? splice : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private bool Scan()
    {
        var reader = new Utf8JsonReader(Body, new JsonReaderOptions { MaxDepth = 256 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
        var properties = 0;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                _objectEnd = (int)reader.TokenStartIndex;
                // Trailing bytes after the object are left to the DOM path, which refuses them.
                return properties > 0 && !reader.Read();
            }
            properties++;
            if (reader.ValueTextEquals("model"u8))
            {
                if (_modelStart >= 0) return false;
                reader.Read();
                _modelStart = (int)reader.TokenStartIndex;
                reader.Skip();
                _modelEnd = (int)reader.BytesConsumed;
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                if (_usageStart >= 0) return false;
                reader.Read();
                _usageStart = (int)reader.TokenStartIndex;
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    if (!ReadUsage(ref reader)) return false;
                }
                else reader.Skip();
                _usageEnd = (int)reader.BytesConsumed;
            }
            else if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray) MeasureChoices(ref reader);
                else reader.Skip();
            }
            else reader.Skip();
        }
        return false;
    }

    /// <summary>From the usage object's start to its end: the same fields and rules as <c>UsageJson.Read</c>.</summary>
    private bool ReadUsage(ref Utf8JsonReader reader)
    {
        long? promptTokens = null, inputTokens = null, completionTokens = null, outputTokens = null, cached = null;
        var seen = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = reader.ValueTextEquals("prompt_tokens"u8) ? 1 : reader.ValueTextEquals("input_tokens"u8) ? 2
                : reader.ValueTextEquals("completion_tokens"u8) ? 4 : reader.ValueTextEquals("output_tokens"u8) ? 8
                : reader.ValueTextEquals("prompt_tokens_details"u8) ? 16 : 0;
            if ((seen & field) != 0) return false;   // a field given twice: which one counts is the DOM's call
            seen |= field;
            reader.Read();
            switch (field)
            {
                case 1: promptTokens = Long(ref reader); break;
                case 2: inputTokens = Long(ref reader); break;
                case 4: completionTokens = Long(ref reader); break;
                case 8: outputTokens = Long(ref reader); break;
                case 16:
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        break;
                    }
                    var cachedSeen = false;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isCached = reader.ValueTextEquals("cached_tokens"u8);
                        reader.Read();
                        if (isCached)
                        {
                            if (cachedSeen) return false;
                            cachedSeen = true;
                            cached = Long(ref reader);
                        }
                        reader.Skip();
                    }
                    break;
                default: reader.Skip(); break;
            }
        }
        var prompt = promptTokens ?? inputTokens;
        var completion = completionTokens ?? outputTokens ?? 0;
        var cachedTokens = cached ?? 0;
        Usage = prompt is null || prompt < 0 || completion < 0 || cachedTokens < 0 ? null : new TokenUsage(prompt.Value, completion, cachedTokens);
        return true;
    }

    /// <summary>A whole number (also written as 12.0), as <c>UsageJson.ReadLong</c> reads it; null otherwise.</summary>
    private static long? Long(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.Number)
        {
            reader.Skip();
            return null;
        }
        if (reader.TryGetInt64(out var whole)) return whole;
        return reader.TryGetDouble(out var x) && x == Math.Floor(x) && x is >= 0 and < long.MaxValue ? (long)x : null;
    }

    /// <summary>choices[].message: content, refusal, tool_calls[].function.name and .arguments.</summary>
    private void MeasureChoices(ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isMessage = reader.ValueTextEquals("message"u8);
                reader.Read();
                if (isMessage && reader.TokenType == JsonTokenType.StartObject) MeasureMessage(ref reader);
                else reader.Skip();
            }
        }
    }

    private void MeasureMessage(ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isText = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("refusal"u8);
            var isToolCalls = !isText && reader.ValueTextEquals("tool_calls"u8);
            reader.Read();
            if (isText) AnswerBytes += TextBytes(ref reader);
            else if (isToolCalls && reader.TokenType == JsonTokenType.StartArray)
            {
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        continue;
                    }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isFunction = reader.ValueTextEquals("function"u8);
                        reader.Read();
                        if (!isFunction || reader.TokenType != JsonTokenType.StartObject)
                        {
                            reader.Skip();
                            continue;
                        }
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var isPart = reader.ValueTextEquals("name"u8) || reader.ValueTextEquals("arguments"u8);
                            reader.Read();
                            if (isPart) AnswerBytes += TextBytes(ref reader);
                            else reader.Skip();
                        }
                    }
                }
            }
            else reader.Skip();
        }
    }

    /// <summary>The unescaped UTF-8 length of a string value (0 for anything else).</summary>
    private static long TextBytes(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return 0;
        }
        if (!reader.ValueIsEscaped) return reader.ValueSpan.Length;
        var scratch = ArrayPool<byte>.Shared.Rent(reader.ValueSpan.Length);
        try
        {
            return reader.CopyString(scratch);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>Writes the answer: the provider's bytes, with our model id and our usage (and cost) in place of theirs.</summary>
    public void WriteTo(IBufferWriter<byte> output, string modelId, TokenUsage usage, long costMicros)
    {
        using var json = new Utf8JsonWriter(output);
        var at = 0;
        // The replacements in the order they appear; a missing one is added before the closing brace.
        var modelFirst = _modelStart >= 0 && (_usageStart < 0 || _modelStart < _usageStart);
        if (modelFirst) at = Model(at);
        if (_usageStart >= 0)
        {
            Copy(at, _usageStart);
            Usage();
            at = _usageEnd;
        }
        if (_modelStart >= 0 && !modelFirst) at = Model(at);
        Copy(at, _objectEnd);
        if (_modelStart < 0)
        {
            output.Write(",\"model\":"u8);
            json.Reset(output);
            json.WriteStringValue(modelId);
            json.Flush();
        }
        if (_usageStart < 0)
        {
            output.Write(",\"usage\":"u8);
            Usage();
        }
        output.Write(Body.AsSpan(_objectEnd));

        void Copy(int from, int to) => output.Write(Body.AsSpan(from, to - from));

        int Model(int from)
        {
            Copy(from, _modelStart);
            json.Reset(output);
            json.WriteStringValue(modelId);
            json.Flush();
            return _modelEnd;
        }

        void Usage()
        {
            json.Reset(output);
            WriteUsage(json, usage, costMicros);
            json.Flush();
        }
    }

    /// <summary>The same object as <c>UsageJson.Create</c>.</summary>
    private static void WriteUsage(Utf8JsonWriter w, TokenUsage usage, long costMicros)
    {
        w.WriteStartObject();
        w.WriteNumber("prompt_tokens"u8, usage.PromptTokens);
        w.WriteNumber("completion_tokens"u8, usage.CompletionTokens);
        w.WriteNumber("total_tokens"u8, usage.TotalTokens);
        w.WriteStartObject("prompt_tokens_details"u8);
        w.WriteNumber("cached_tokens"u8, usage.CachedTokens);
        w.WriteEndObject();
        w.WriteNumber("cost"u8, ModelPricing.MicrosToUsd(costMicros));
        w.WriteEndObject();
    }
}
