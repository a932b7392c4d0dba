using System.Text.Json;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The tokens of one Realtime response, split the way they are priced. Cached tokens are part of the input
/// (OpenAI: "input tokens will include cached and uncached tokens").
/// </summary>
public readonly record struct RealtimeUsage(long TextIn, long AudioIn, long CachedText, long CachedAudio, long TextOut, long AudioOut,
    bool Estimated = false)
{
    public long InputTokens => TextIn + AudioIn;
    public long OutputTokens => TextOut + AudioOut;
    public long CachedTokens => CachedText + CachedAudio;

    /// <summary>The usage row's token counts (the row has no audio columns: its cost carries the audio price).</summary>
    public TokenUsage ToTokenUsage() => new(InputTokens, OutputTokens, CachedTokens, Estimated);

    /// <summary>
    /// <c>response.usage</c> of a <c>response.done</c> event: <c>input_tokens</c>, <c>output_tokens</c>,
    /// <c>input_token_details {cached_tokens, text_tokens, audio_tokens, image_tokens, cached_tokens_details}</c>,
    /// <c>output_token_details {text_tokens, audio_tokens}</c>. Tokens the details do not attribute are priced as audio,
    /// the dearer kind, so a report without details is never under-billed; image tokens are priced as text.
    /// </summary>
    public static RealtimeUsage FromJson(JsonElement usage)
    {
        var input = Long(usage, "input_tokens");
        var output = Long(usage, "output_tokens");
        long textIn = 0, cached = 0, cachedAudio = 0, textOut = 0;
        if (usage.TryGetProperty("input_token_details", out var inDetails) && inDetails.ValueKind == JsonValueKind.Object)
        {
            textIn = Long(inDetails, "text_tokens") + Long(inDetails, "image_tokens");
            cached = Long(inDetails, "cached_tokens");
            if (inDetails.TryGetProperty("cached_tokens_details", out var cachedDetails) && cachedDetails.ValueKind == JsonValueKind.Object)
                cachedAudio = Long(cachedDetails, "audio_tokens");
        }
        if (usage.TryGetProperty("output_token_details", out var outDetails) && outDetails.ValueKind == JsonValueKind.Object)
            textOut = Long(outDetails, "text_tokens");
        textIn = Math.Min(textIn, input);
        textOut = Math.Min(textOut, output);
        var audioIn = input - textIn;
        cached = Math.Min(cached, input);
        cachedAudio = Math.Min(cachedAudio, Math.Min(cached, audioIn));
        // Cached tokens without a split go to text first: what is left of the cache beyond the text is audio.
        var cachedText = Math.Min(cached - cachedAudio, textIn);
        cachedAudio = Math.Min(audioIn, cached - cachedText);
        return new RealtimeUsage(textIn, audioIn, cachedText, cachedAudio, textOut, output - textOut);
    }

    private static long Long(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) && n > 0 ? n : 0;
}

/// <summary>
/// What Realtime tokens cost: text at the model's input, output and cached prices, audio at its audio prices
/// (<c>audio_input_micros_per_mtok</c>, <c>audio_output_micros_per_mtok</c>), our margin on the sum, rounded up once per
/// response (integer micro-USD, exact in Int128, as <see cref="ModelPricing"/>). Cached audio is priced as cached
/// text (OpenAI lists both at the same rate for its realtime models, and the catalogue has one cached price).
/// </summary>
public readonly record struct RealtimePricing(ModelPricing Text, long AudioInputPerMTok, long AudioOutputPerMTok)
{
    private const long TokensPerPrice = 1_000_000;
    private const long BasisPoints = 10_000;

    /// <summary>The model's Realtime prices, or null when it lacks one (a realtime model is served only when all are set).</summary>
    public static RealtimePricing? For(ResolvedModel model) =>
        model.Pricing is { } text && model.Media is { AudioInputPerMTok: { } audioIn, AudioOutputPerMTok: { } audioOut }
            ? new RealtimePricing(text, audioIn, audioOut)
            : null;

    /// <summary>What the user pays, margin included, rounded up.</summary>
    public long CostMicros(RealtimeUsage usage)
    {
        var divisor = (Int128)TokensPerPrice * BasisPoints;
        var cost = (Raw(usage) * Text.MarginBasisPoints + divisor - 1) / divisor;
        return cost > long.MaxValue ? long.MaxValue : (long)cost;
    }

    /// <summary>The provider's list price of the usage, rounded up (the usage row's provider cost).</summary>
    public long ProviderCostMicros(RealtimeUsage usage)
    {
        var cost = (Raw(usage) + TokensPerPrice - 1) / TokensPerPrice;
        return cost > long.MaxValue ? long.MaxValue : (long)cost;
    }

    /// <summary>The worst case of one response: <paramref name="promptTokens"/> of audio input and <paramref name="outputTokens"/> of the dearer output.</summary>
    public long WorstCaseMicros(long promptTokens, long outputTokens) => Math.Max(
        CostMicros(new RealtimeUsage(0, promptTokens, 0, 0, 0, outputTokens)),
        CostMicros(new RealtimeUsage(0, promptTokens, 0, 0, outputTokens, 0)));

    private Int128 Raw(RealtimeUsage u) =>
        (Int128)Math.Max(0, u.TextIn - u.CachedText) * Text.InputPerMTok
        + (Int128)Math.Max(0, u.AudioIn - u.CachedAudio) * AudioInputPerMTok
        + (Int128)(u.CachedText + u.CachedAudio) * Text.CachedInputPerMTok
        + (Int128)u.TextOut * Text.OutputPerMTok
        + (Int128)u.AudioOut * AudioOutputPerMTok;
}
