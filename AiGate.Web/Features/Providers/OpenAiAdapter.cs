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

    public override HttpRequestMessage CreateChatRequest(Provider provider, ChatCall call, string upstreamModel)
    {
        var body = call.Body;
        body["model"] = upstreamModel;
        // OpenAI's own API wants max_completion_tokens (its reasoning models reject max_tokens, and it
        // supersedes max_tokens); OpenAI-compatible servers widely know only max_tokens. Whatever is sent,
        // the reservation covers the larger of the two the client gave.
        var openAi = provider.BaseUrl.Host == "api.openai.com";
        if (openAi && body["max_completion_tokens"] is not null) body.Remove("max_tokens");
        if (!call.ClientSetMaxTokens) body[openAi ? "max_completion_tokens" : "max_tokens"] = call.MaxOutputTokens;
        else if (!openAi && body["max_tokens"] is null) body["max_tokens"] = call.MaxOutputTokens;   // bounded where only max_tokens is known
        if (call.Stream)
        {
            var options = body["stream_options"] as JsonObject ?? [];
            options["include_usage"] = true;
            body["stream_options"] = options;
        }
        return Post(provider, "chat/completions", body, call.Stream);
    }

    public override ChatCompletionResult ReadChatCompletion(ReadOnlySpan<byte> body, ChatCall call)
    {
        var response = ParseObject(body);
        response["model"] = call.Model.Id;
        return new ChatCompletionResult(response, UsageJson.Read(response["usage"]));
    }

    public override ChatStreamTranslator CreateStreamTranslator(ChatCall call) => new Translator(call);

    public override HttpRequestMessage? CreateEmbeddingsRequest(Provider provider, JsonObject body, string upstreamModel)
    {
        body["model"] = upstreamModel;
        return Post(provider, "embeddings", body, stream: false);
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

    internal static HttpRequestMessage Post(Provider provider, string path, JsonNode body, bool stream)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, provider.Url(path))
        {
            Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", provider.ApiKey);
        if (stream) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
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
            CompletionBytes += JsonScan.StringValueBytes(data, "\"content\""u8) + JsonScan.StringValueBytes(data, "\"arguments\""u8);
            if (!JsonScan.HasObjectValue(data, "\"usage\""u8))
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
            else if (usage is { } counted && chunk["usage"] is JsonObject usageNode)
            {
                usageNode["cost"] = ModelPricing.MicrosToUsd(Call.Pricing.CostMicros(counted));
            }
            output.WriteJson(chunk);
        }
    }
}

/// <summary>Cheap looks into a JSON chunk without parsing it (hot path: one call per streamed chunk).</summary>
internal static class JsonScan
{
    /// <summary>True when <paramref name="property"/> (quoted) is followed by <c>:</c> and an object.</summary>
    public static bool HasObjectValue(ReadOnlySpan<byte> json, ReadOnlySpan<byte> property)
    {
        var at = json.IndexOf(property);
        while (at >= 0)
        {
            var rest = json[(at + property.Length)..].TrimStart(" \t\r\n"u8);
            if (rest.Length > 0 && rest[0] == (byte)':')
            {
                rest = rest[1..].TrimStart(" \t\r\n"u8);
                if (rest.Length > 0 && rest[0] == (byte)'{') return true;
            }
            var next = json[(at + 1)..].IndexOf(property);
            at = next < 0 ? -1 : at + 1 + next;
        }
        return false;
    }

    /// <summary>Bytes of the first string value of <paramref name="property"/> (escaped form), 0 when absent or not a string.</summary>
    public static int StringValueBytes(ReadOnlySpan<byte> json, ReadOnlySpan<byte> property)
    {
        var at = json.IndexOf(property);
        if (at < 0) return 0;
        var rest = json[(at + property.Length)..].TrimStart(" \t\r\n"u8);
        if (rest.Length == 0 || rest[0] != (byte)':') return 0;
        rest = rest[1..].TrimStart(" \t\r\n"u8);
        if (rest.Length == 0 || rest[0] != (byte)'"') return 0;
        rest = rest[1..];
        for (var i = 0; i < rest.Length; i++)
        {
            if (rest[i] == (byte)'\\') { i++; continue; }
            if (rest[i] == (byte)'"') return i;
        }
        return rest.Length;
    }
}
