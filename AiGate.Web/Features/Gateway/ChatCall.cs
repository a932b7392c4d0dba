using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Gateway;

/// <summary>One validated chat completion request, as every adapter sees it.</summary>
public sealed class ChatCall
{
    /// <summary>
    /// The client's request body (OpenAI shape) as nodes. Adapters that translate it read it (and may set <c>model</c> and
    /// <c>stream_options</c> on it); when the call was read as a <see cref="Request"/> document it is parsed from those
    /// bytes on first use, so an OpenAI-kind route that forwards the bytes never builds it.
    /// </summary>
    public JsonObject Body
    {
        get => _body ??= (JsonObject)JsonNode.Parse((Request ?? throw new InvalidOperationException(
            "The call has no request body to read: none was read as a document, or it was released once the stream was answered.")).Bytes.Span)!;
        init => _body = value;
    }
    private JsonObject? _body;

    /// <summary>Nodes the endpoint already parsed from <see cref="Request"/> (for a pricing rule), so <see cref="Body"/> does not parse twice; null: none.</summary>
    public JsonObject? ParsedBody { init => _body = value; }

    /// <summary>The validated body as read (<see cref="RequestBody.ReadDocumentAsync"/>), when the endpoint read it so; null otherwise.</summary>
    public RequestJson? Request
    {
        get => _request;
        init => _request = value;
    }
    private RequestJson? _request;

    /// <summary>
    /// Lets the client's body go (its pooled bytes back, its nodes to the GC) once a stream is answered: the upstream has
    /// the request, no other route will be tried, and nothing billed from here reads it (the prompt was counted at the
    /// start). An open stream otherwise held its whole prompt for as long as it ran (issue 16: 10,000 streams of 20 KB
    /// prompts are 200 MB). <see cref="Body"/> throws after this.
    /// </summary>
    public void ReleaseRequest()
    {
        _request?.Dispose();
        _request = null;
        _body = null;
    }

    /// <summary>True once <see cref="Body"/> exists as nodes (given, or parsed and possibly changed by an adapter).</summary>
    public bool HasBodyNodes => _body is not null;
    public required ResolvedModel Model { get; init; }
    public required bool Stream { get; init; }
    /// <summary>The client asked for a usage chunk (<c>stream_options.include_usage</c>); we always ask the upstream for one.</summary>
    public required bool ClientWantsUsage { get; init; }
    /// <summary>
    /// Our completion id, used when the provider's ids are not OpenAI-shaped ("chatcmpl-…"): made on first use, since an
    /// OpenAI-kind route relays the provider's own ids and never needs one (issue 16).
    /// </summary>
    public string CompletionId
    {
        get => _completionId ??= Infrastructure.PrefixedId.New(CompletionIdPrefix);
        init => _completionId = value;
    }
    private string? _completionId;

    /// <summary>What <see cref="CompletionId"/> starts with when it is made on first use.</summary>
    public string CompletionIdPrefix { get; init; } = "chatcmpl-";

    public required long Created { get; init; }
    /// <summary>
    /// The output limit this call runs under: the client's max_tokens, or our default within the
    /// model's maximum. Adapters send it upstream when the client set none, so the reserved worst
    /// case really bounds the cost (RELIABILITY L9).
    /// </summary>
    public required int MaxOutputTokens { get; init; }
    public required bool ClientSetMaxTokens { get; init; }
    /// <summary>
    /// The output the reservation covers: the larger of the client's two limits (<c>max_tokens</c>,
    /// <c>max_completion_tokens</c>; an OpenAI-compatible server may honour either) times <c>n</c>.
    /// </summary>
    public required long OutputBound { get; init; }
    /// <summary><c>n</c>: how many choices the client asked for (1 when absent).</summary>
    public required int Choices { get; init; }
    /// <summary>
    /// Input tokens reserved for the image, audio and file parts of the messages: a fixed worst case per
    /// part (<see cref="GatewayOptions.ImagePartWorstCaseTokens"/>), not their bytes.
    /// </summary>
    public required long MediaTokensBound { get; init; }

    /// <summary>How this model's tokens are counted (<see cref="TokenCounter"/>).</summary>
    public ModelTokenizer Tokenizer
    {
        get => _tokenizer ??= TokenCounter.For(Model);
        init => _tokenizer = value;
    }
    private ModelTokenizer? _tokenizer;

    /// <summary>The prompt's tokens as we count them (<see cref="ModelTokenizer.CountPrompt"/>): billed when the provider reports none.</summary>
    public long PromptTokens { get; init; }

    /// <summary>What the call is billed at: the model's price, or the BYOK fee once the call went upstream with the user's key.</summary>
    public ModelPricing Pricing
    {
        get => _pricing ?? Model.Pricing!.Value;
        set => _pricing = value;
    }
    private ModelPricing? _pricing;
}
