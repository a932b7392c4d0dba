using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// How to speak one provider's API: turn an OpenAI-shaped call into the provider's request, and the
/// provider's answers (a JSON body, or server-sent events) back into OpenAI's shapes, with usage.
/// Adapters are stateless singletons; per-stream state lives in the <see cref="ChatStreamTranslator"/>.
/// </summary>
public abstract class ProviderAdapter
{
    /// <summary>The upstream request, authenticated with <paramref name="apiKey"/> (one of the provider's keys, picked per attempt by <see cref="ProviderKeyRing"/>).</summary>
    public abstract HttpRequestMessage CreateChatRequest(Provider provider, ChatCall call, string upstreamModel, string? apiKey);

    /// <summary>Whether the provider answers <c>n</c> &gt; 1 with that many choices (OpenAI's <c>n</c>, Gemini's <c>candidateCount</c>).</summary>
    public virtual bool SupportsChoices => true;

    /// <summary>A successful non-streamed body → an OpenAI <c>chat.completion</c> object and its usage.</summary>
    /// <exception cref="UpstreamProtocolException">The body is not what the provider documents.</exception>
    public abstract ChatCompletionResult ReadChatCompletion(ReadOnlySpan<byte> body, ChatCall call);

    /// <summary>
    /// The answer as bytes to relay with only model and usage replaced, when the provider speaks OpenAI's format
    /// (no DOM on the hot path); null: read it with <see cref="ReadChatCompletion"/>.
    /// </summary>
    public virtual OpenAiCompletionSplice? TrySplice(byte[] body) => null;

    public abstract ChatStreamTranslator CreateStreamTranslator(ChatCall call);

    /// <summary>
    /// The health probe's cheap, free call with the platform's key: the provider's documented "list models".
    /// The default is <c>GET {base}/models</c> (OpenAI and OpenAI-compatible APIs, and echo, which has no key).
    /// </summary>
    public virtual HttpRequestMessage CreateModelsRequest(Provider provider, string? apiKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, provider.Url("models"));
        if (!string.IsNullOrEmpty(apiKey)) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + apiKey);
        return request;
    }

    /// <summary>The embeddings request, or null when the provider kind has no embeddings API we translate.</summary>
    public virtual HttpRequestMessage? CreateEmbeddingsRequest(Provider provider, JsonObject body, string upstreamModel, string? apiKey) => null;

    /// <summary>A successful embeddings body → OpenAI's <c>list</c> of embeddings and its usage.</summary>
    public virtual ChatCompletionResult ReadEmbeddings(ReadOnlySpan<byte> body, string publicModel) =>
        throw new NotSupportedException("This provider has no embeddings API.");

    /// <summary>
    /// An upstream error answer (4xx that is the caller's fault, e.g. 400) → the OpenAI error message to
    /// pass on. The default reads OpenAI's own envelope.
    /// </summary>
    public virtual string? ReadErrorMessage(ReadOnlySpan<byte> body)
    {
        try
        {
            return JsonNode.Parse(body)?["error"]?["message"]?.GetValue<string>();
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}

public sealed record ChatCompletionResult(JsonObject Response, TokenUsage? Usage);

/// <summary>The upstream answered something its API does not document (bad JSON, a missing field).</summary>
public sealed class UpstreamProtocolException(string message) : Exception(message);
