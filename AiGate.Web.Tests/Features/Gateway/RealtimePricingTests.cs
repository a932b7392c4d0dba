using System.Text;
using System.Text.Json;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>How a Realtime <c>response.usage</c> is split and priced, and how the relay recognises the events it bills by.</summary>
public sealed class RealtimePricingTests
{
    // gpt-4o-realtime-preview's list prices: text $5 / $20, cached $2.50, audio $40 / $80 per 1M tokens; margin ×1.2.
    private static readonly RealtimePricing Prices = new(new ModelPricing(5_000_000, 20_000_000, 2_500_000, 12_000), 40_000_000, 80_000_000);

    private static RealtimeUsage Parse(string json) => RealtimeUsage.FromJson(JsonDocument.Parse(json).RootElement);

    [Fact]
    public void Usage_with_details_is_split_into_text_audio_and_cached_of_each()
    {
        var usage = Parse("""
            {"total_tokens":1700,"input_tokens":1200,"output_tokens":500,
             "input_token_details":{"text_tokens":200,"audio_tokens":1000,"image_tokens":0,"cached_tokens":300,
                                    "cached_tokens_details":{"text_tokens":100,"audio_tokens":200,"image_tokens":0}},
             "output_token_details":{"text_tokens":100,"audio_tokens":400}}
            """);
        Assert.Equal(new RealtimeUsage(TextIn: 200, AudioIn: 1000, CachedText: 100, CachedAudio: 200, TextOut: 100, AudioOut: 400), usage);
        Assert.Equal(new TokenUsage(1200, 500, 300), usage.ToTokenUsage());
        // Uncached text, uncached audio, cached (both kinds), text out, audio out, each at its price per 1M tokens.
        var raw = 100L * 5_000_000 + 800L * 40_000_000 + 300L * 2_500_000 + 100L * 20_000_000 + 400L * 80_000_000;
        Assert.Equal((raw + 999_999) / 1_000_000, Prices.ProviderCostMicros(usage));
        Assert.Equal((raw * 12_000 + 10_000_000_000 - 1) / 10_000_000_000, Prices.CostMicros(usage));
    }

    [Fact]
    public void Tokens_the_details_do_not_attribute_are_priced_as_audio()
    {
        var usage = Parse("""{"input_tokens":1000,"output_tokens":300}""");
        Assert.Equal(new RealtimeUsage(0, 1000, 0, 0, 0, 300), usage);
        var partly = Parse("""{"input_tokens":1000,"output_tokens":300,"input_token_details":{"text_tokens":600,"cached_tokens":700},"output_token_details":{"text_tokens":50}}""");
        // Cached without a split: text first (600), the rest of the cache (100) is audio.
        Assert.Equal(new RealtimeUsage(600, 400, 600, 100, 50, 250), partly);
    }

    [Fact]
    public void Details_larger_than_the_totals_never_bill_more_than_the_totals()
    {
        var usage = Parse("""{"input_tokens":10,"output_tokens":5,"input_token_details":{"text_tokens":50,"cached_tokens":80},"output_token_details":{"text_tokens":9}}""");
        Assert.Equal(10, usage.InputTokens);
        Assert.Equal(5, usage.OutputTokens);
        Assert.True(usage.CachedTokens <= 10);
    }

    [Fact]
    public void The_worst_case_of_a_response_is_the_prompt_as_audio_and_the_output_at_the_dearer_price()
    {
        Assert.Equal(Prices.CostMicros(new RealtimeUsage(0, 16_000, 0, 0, 0, 4096)), Prices.WorstCaseMicros(16_000, 4096));
        var textDearer = Prices with { AudioOutputPerMTok = 1 };
        Assert.Equal(textDearer.CostMicros(new RealtimeUsage(0, 16_000, 0, 0, 4096, 0)), textDearer.WorstCaseMicros(16_000, 4096));
    }

    [Theory]
    [InlineData("""{"type":"response.done","event_id":"e","response":{"usage":{}}}""", "ResponseDone", 0)]
    [InlineData("""{"event_id":"e","response":{"id":"r"},"type":"response.created"}""", "ResponseCreated", 0)]
    [InlineData("""{"type":"response.output_text.delta","delta":"Hello"}""", "TextDelta", 5)]
    [InlineData("""{"delta":"Hi","response_id":"r","type":"response.text.delta"}""", "TextDelta", 2)]
    [InlineData("""{"type":"response.output_audio.delta","item_id":"i","delta":"AAAA"}""", "AudioDelta", 4)]
    [InlineData("""{"type":"response.audio_transcript.delta","delta":"words"}""", "Other", 0)]
    [InlineData("""{"type":"session.created","session":{"type":"response.done"}}""", "Other", 0)]
    [InlineData("""not json""", "Other", 0)]
    public void Events_are_recognised_by_their_top_level_type(string json, string type, long delta)
    {
        var (kind, length) = RealtimeSession.TypeAndDelta(Encoding.UTF8.GetBytes(json));
        Assert.Equal(type, kind.ToString());
        Assert.Equal(delta, length);
    }
}
