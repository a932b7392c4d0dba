namespace AiGate.Web.Features.Models;

/// <summary>Token counts of one call, as the provider reported them (or as estimated, see <see cref="Estimated"/>).</summary>
/// <param name="PromptTokens">All input tokens, cached ones included (OpenAI's <c>prompt_tokens</c>).</param>
/// <param name="CachedTokens">Input tokens served from the provider's prompt cache, billed at the cached rate.</param>
public readonly record struct TokenUsage(long PromptTokens, long CompletionTokens, long CachedTokens = 0, bool Estimated = false)
{
    public long TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>
/// A model's price: the provider's list prices (micro-USD per million tokens) and our margin in
/// basis points. All money is integer micro-USD; the product of tokens, price and margin is
/// computed exactly (Int128) and rounded up once per request.
/// </summary>
public readonly record struct ModelPricing(long InputPerMTok, long OutputPerMTok, long CachedInputPerMTok, int MarginBasisPoints)
{
    private const long TokensPerPrice = 1_000_000;
    private const long BasisPoints = 10_000;

    /// <summary>What the user pays for <paramref name="usage"/>, in micro-USD, rounded up.</summary>
    public long CostMicros(TokenUsage usage)
    {
        var scaled = RawCost(usage) * MarginBasisPoints;
        const long divisor = TokensPerPrice * BasisPoints;
        var cost = (scaled + divisor - 1) / divisor;
        return cost > long.MaxValue ? long.MaxValue : (long)cost;
    }

    /// <summary>
    /// What the provider's list prices make of <paramref name="usage"/>, without our margin, in micro-USD rounded up:
    /// the cost beside the charge on every usage row. The same sum as <see cref="CostMicros"/>, so the charge is this
    /// times the margin (each rounded up once from the exact product).
    /// </summary>
    public long ProviderCostMicros(TokenUsage usage)
    {
        var cost = (RawCost(usage) + TokensPerPrice - 1) / TokensPerPrice;
        return cost > long.MaxValue ? long.MaxValue : (long)cost;
    }

    /// <summary>Our price per million input tokens (micro-USD), margin included: what the pricing page and /models show.</summary>
    public long OurInputPerMTok => Apply(InputPerMTok);
    public long OurOutputPerMTok => Apply(OutputPerMTok);
    public long OurCachedInputPerMTok => Apply(CachedInputPerMTok);

    /// <summary>Tokens times list prices: micro-USD times a million tokens, exact.</summary>
    private Int128 RawCost(TokenUsage usage)
    {
        var cached = Math.Clamp(usage.CachedTokens, 0, Math.Max(0, usage.PromptTokens));
        var uncached = Math.Max(0, usage.PromptTokens - cached);
        return (Int128)uncached * InputPerMTok + (Int128)cached * CachedInputPerMTok + (Int128)Math.Max(0, usage.CompletionTokens) * OutputPerMTok;
    }

    private long Apply(long price) => (long)(((Int128)price * MarginBasisPoints + BasisPoints - 1) / BasisPoints);

    public static decimal MicrosToUsd(long micros) => micros / 1_000_000m;
}
