using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Gateway;

/// <summary>One validated chat completion request, as every adapter sees it.</summary>
public sealed class ChatCall
{
    /// <summary>The client's request body (OpenAI shape), parsed once. Adapters may set <c>model</c> and <c>stream_options</c> on it.</summary>
    public required JsonObject Body { get; init; }
    public required ResolvedModel Model { get; init; }
    public required bool Stream { get; init; }
    /// <summary>The client asked for a usage chunk (<c>stream_options.include_usage</c>); we always ask the upstream for one.</summary>
    public required bool ClientWantsUsage { get; init; }
    /// <summary>Our completion id, used when the provider's ids are not OpenAI-shaped ("chatcmpl-…").</summary>
    public required string CompletionId { get; init; }
    public required long Created { get; init; }

    public ModelPricing Pricing => Model.Pricing!.Value;
}
