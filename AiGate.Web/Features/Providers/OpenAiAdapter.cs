using System.Buffers;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// OpenAI and every OpenAI-compatible API (Groq, Together, Mistral, DeepSeek, vLLM, Ollama…). The
/// request passes through with two changes: the upstream's model name, and, for streams,
/// <c>stream_options.include_usage</c> so that the last chunk carries usage even when the client
/// did not ask (that chunk is then dropped on the way back). Chunks are forwarded byte for byte;
/// only the one carrying usage is parsed (to add <c>cost</c>).
/// </summary>
public sealed class OpenAiAdapter : ProviderAdapter
{
    public static readonly OpenAiAdapter Instance = new();

    public override HttpRequestMessage CreateChatRequest(Provider provider, ChatCall call, string upstreamModel, string? apiKey)
    {
        // OpenAI's own API wants max_completion_tokens (its reasoning models reject max_tokens, and it
        // supersedes max_tokens); OpenAI-compatible servers widely know only max_tokens. Whatever is sent,
        // the reservation covers the larger of the two the client gave.
        var openAi = provider.BaseUrl.Host == "api.openai.com";
        if (call is { Request: { } request, HasBodyNodes: false })
            return Post(provider, "chat/completions", RewriteChatBody(request.Root, call, upstreamModel, openAi), call.Stream, apiKey);
        var body = call.Body;
        body["model"] = upstreamModel;
        if (openAi && body["max_completion_tokens"] is not null) body.Remove("max_tokens");
        if (!call.ClientSetMaxTokens) body[openAi ? "max_completion_tokens" : "max_tokens"] = call.MaxOutputTokens;
        else if (!openAi && body["max_tokens"] is null) body["max_tokens"] = call.MaxOutputTokens;   // bounded where only max_tokens is known
        if (call.Stream)
        {
            var options = body["stream_options"] as JsonObject ?? [];
            options["include_usage"] = true;
            body["stream_options"] = options;
        }
        return Post(provider, "chat/completions", body, call.Stream, apiKey);
    }

    /// <summary>
    /// The client's body as read, written once with the same changes the node path makes (the upstream's model, the output
    /// limit, <c>stream_options.include_usage</c>), every other field as the client sent it: no nodes are built.
    /// </summary>
    private static byte[] RewriteChatBody(JsonElement body, ChatCall call, string upstreamModel, bool openAi)
    {
        // One writer and buffer per thread (nothing awaits while writing): the only allocation is the body sent.
        var output = t_output ??= new ArrayBufferWriter<byte>(1024);
        output.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(output);
        writer.Reset(output);
        var hasMaxTokens = false;
        var hasMaxCompletionTokens = body.TryGetProperty("max_completion_tokens"u8, out var mct) && mct.ValueKind != JsonValueKind.Null;
        var hasStreamOptions = false;
        writer.WriteStartObject();
        foreach (var property in body.EnumerateObject())
        {
            if (property.NameEquals("model"u8))
            {
                writer.WriteString("model"u8, upstreamModel);
                continue;
            }
            if (property.NameEquals("max_tokens"u8) || property.NameEquals("max_completion_tokens"u8))
            {
                // A null limit is no limit: left out, and the one we send is written below.
                if (property.Value.ValueKind == JsonValueKind.Null) continue;
                if (property.NameEquals("max_tokens"u8))
                {
                    if (openAi && hasMaxCompletionTokens) continue;
                    hasMaxTokens = true;
                }
            }
            if (call.Stream && property.NameEquals("stream_options"u8))
            {
                hasStreamOptions = true;
                writer.WritePropertyName("stream_options"u8);
                WriteStreamOptions(writer, property.Value);
                continue;
            }
            property.WriteTo(writer);
        }
        if (!call.ClientSetMaxTokens) writer.WriteNumber(openAi ? "max_completion_tokens"u8 : "max_tokens"u8, call.MaxOutputTokens);
        else if (!openAi && !hasMaxTokens) writer.WriteNumber("max_tokens"u8, call.MaxOutputTokens);
        if (call.Stream && !hasStreamOptions)
        {
            writer.WritePropertyName("stream_options"u8);
            WriteStreamOptions(writer, default);
        }
        writer.WriteEndObject();
        writer.Flush();
        var bytes = output.WrittenSpan.ToArray();
        if (output.Capacity > 64 * 1024) (t_output, t_writer) = (null, null);   // a rare large body's buffer is not kept
        return bytes;
    }

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_output;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>"Bearer {key}", made once per key and thread: the key ring hands out the same key strings call after call.</summary>
    private static string BearerHeader(string apiKey)
    {
        if (!ReferenceEquals(apiKey, t_bearerKey)) (t_bearerKey, t_bearer) = (apiKey, "Bearer " + apiKey);
        return t_bearer!;
    }

    [ThreadStatic] private static string? t_bearerKey;
    [ThreadStatic] private static string? t_bearer;

    /// <summary>The client's <c>stream_options</c> (an object, or none) with <c>include_usage</c> set.</summary>
    private static void WriteStreamOptions(Utf8JsonWriter writer, JsonElement options)
    {
        writer.WriteStartObject();
        if (options.ValueKind == JsonValueKind.Object)
            foreach (var option in options.EnumerateObject())
                if (!option.NameEquals("include_usage"u8)) option.WriteTo(writer);
        writer.WriteBoolean("include_usage"u8, true);
        writer.WriteEndObject();
    }

    public override ChatCompletionResult ReadChatCompletion(ReadOnlySpan<byte> body, ChatCall call)
    {
        var response = ParseObject(body);
        response["model"] = call.Model.Id;
        return new ChatCompletionResult(response, UsageJson.Read(response["usage"]));
    }

    public override OpenAiCompletionSplice? TrySplice(byte[] body) => OpenAiCompletionSplice.TryScan(body);

    public override ChatStreamTranslator CreateStreamTranslator(ChatCall call) => new Translator(call);

    public override HttpRequestMessage? CreateEmbeddingsRequest(Provider provider, JsonObject body, string upstreamModel, string? apiKey)
    {
        body["model"] = upstreamModel;
        return Post(provider, "embeddings", body, stream: false, apiKey);
    }

    public override ChatCompletionResult ReadEmbeddings(ReadOnlySpan<byte> body, string publicModel)
    {
        var response = ParseObject(body);
        response["model"] = publicModel;
        var usage = response["usage"] is JsonObject u && UsageJson.ReadLong(u["prompt_tokens"]) is { } prompt and >= 0
            ? new TokenUsage(prompt, 0)
            : (TokenUsage?)null;
        return new ChatCompletionResult(response, usage);
    }

    internal static HttpRequestMessage Post(Provider provider, string path, JsonNode body, bool stream, string? apiKey) =>
        Post(provider, path, JsonSerializer.SerializeToUtf8Bytes(body), stream, apiKey);

    private static HttpRequestMessage Post(Provider provider, string path, byte[] body, bool stream, string? apiKey)
    {
        // Headers stored as written (no typed values parsed and formatted back on every call, issue 16).
        var request = new HttpRequestMessage(HttpMethod.Post, provider.Url(path)) { Content = UpstreamContent.Json(body) };
        if (!string.IsNullOrEmpty(apiKey)) request.Headers.TryAddWithoutValidation("Authorization", BearerHeader(apiKey));
        if (stream) request.Headers.TryAddWithoutValidation("Accept", "text/event-stream");
        return request;
    }

    internal static JsonObject ParseObject(ReadOnlySpan<byte> body)
    {
        try
        {
            return JsonNode.Parse(body) as JsonObject ?? throw new UpstreamProtocolException("The upstream answered with JSON that is not an object.");
        }
        catch (JsonException)
        {
            throw new UpstreamProtocolException("The upstream answered with a body that is not JSON.");
        }
    }

    private sealed class Translator(ChatCall call) : ChatStreamTranslator(call)
    {
        public override void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output)
        {
            if (data.SequenceEqual("[DONE]"u8))
            {
                Finished = true;
                output.WriteDone();
                return;
            }
            if (data.IsEmpty) return;   // an empty keep-alive event: nothing for the client
            if (!Scan(data))
            {
                output.WriteData(data);   // the common case: untouched bytes
                return;
            }

            var chunk = ParseObject(data);
            var usage = UsageJson.Read(chunk["usage"]);
            if (usage is { } u) Usage = u;
            if (!Call.ClientWantsUsage)
            {
                if (chunk["choices"] is JsonArray { Count: 0 }) return;   // the usage-only chunk we asked for
                chunk.Remove("usage");
            }
            else if (usage is not null && BillableUsage(endedCleanly: true) is { } billed && chunk["usage"] is JsonObject usageNode)
            {
                // The usage chunk shows what is billed: an absurdly low output count is replaced by ours.
                usageNode["completion_tokens"] = billed.CompletionTokens;
                usageNode["total_tokens"] = billed.TotalTokens;
                usageNode["cost"] = ModelPricing.MicrosToUsd(Call.Pricing.CostMicros(billed));
            }
            output.WriteJson(chunk);
        }

        /// <summary>
        /// One pass of the JSON reader over the chunk (no allocation): it checks the chunk is JSON (a
        /// malformed one ends the stream cleanly, RELIABILITY Z4), counts the text the model produced
        /// (<c>content</c>, <c>refusal</c>, tool-call <c>arguments</c>, a legacy completion's <c>text</c>, and the <c>reasoning_content</c> /
        /// <c>reasoning</c> that OpenAI-compatible reasoning models stream), and says whether a
        /// <c>usage</c> object is there (that chunk alone is parsed into nodes).
        /// </summary>
        private bool Scan(ReadOnlySpan<byte> data)
        {
            var hasUsage = false;
            var reader = new Utf8JsonReader(data);
            try
            {
                while (reader.Read())
                {
                    if (reader.TokenType != JsonTokenType.PropertyName) continue;
                    var name = Name(ref reader);
                    if (name == Property.Other) continue;
                    if (!reader.Read()) break;
                    if (name == Property.Usage) hasUsage |= reader.TokenType == JsonTokenType.StartObject;
                    else if (reader.TokenType == JsonTokenType.String)
                        CountJsonString(data.Slice((int)reader.TokenStartIndex, reader.ValueSpan.Length + 2));
                }
            }
            catch (JsonException)
            {
                throw new UpstreamProtocolException("The upstream sent a chunk that is not JSON.");
            }
            return hasUsage;
        }

        private enum Property { Other, Usage, Text }

        /// <summary>The property names that matter, compared on the raw bytes (names are never escaped in practice; an escaped one falls back to the decoding compare).</summary>
        private static Property Name(ref Utf8JsonReader reader)
        {
            if (reader.ValueIsEscaped)
                return reader.CurrentDepth == 1 && reader.ValueTextEquals("usage"u8) ? Property.Usage
                    : reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("arguments"u8) || reader.ValueTextEquals("refusal"u8)
                      || reader.ValueTextEquals("reasoning_content"u8) || reader.ValueTextEquals("reasoning"u8) ? Property.Text : Property.Other;
            var name = reader.ValueSpan;
            return name.Length switch
            {
                4 when name.SequenceEqual("text"u8) => Property.Text,   // a legacy text_completion chunk's choice
                5 when reader.CurrentDepth == 1 && name.SequenceEqual("usage"u8) => Property.Usage,
                7 when name.SequenceEqual("content"u8) || name.SequenceEqual("refusal"u8) => Property.Text,
                9 when name.SequenceEqual("arguments"u8) || name.SequenceEqual("reasoning"u8) => Property.Text,
                17 when name.SequenceEqual("reasoning_content"u8) => Property.Text,
                _ => Property.Other,
            };
        }
    }
}
