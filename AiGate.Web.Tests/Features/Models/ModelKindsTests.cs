using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Pages.Pricing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Tests.Features.Models;

/// <summary>
/// The catalogue's model kinds and their price units (migration 0022): the seeded image, speech, transcription,
/// moderation and realtime models are listed by /api/v1/models with their kind and units and shown on /pricing in
/// words; an admin's spec is validated per kind; a catalogue file carries the units both ways; a model without the
/// price its kind is billed by is never served.
/// </summary>
public sealed class ModelKindsTests(PricingApp app) : IClassFixture<PricingApp>
{
    private int Margin => app.Services.GetRequiredService<IOptions<ModelsOptions>>().Value.DefaultMarginBasisPoints;

    private static string Usd(long micros) => (micros / 1_000_000m).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private long Ours(long listMicros) => (listMicros * Margin + 9_999) / 10_000;

    [Fact]
    public async Task Models_lists_every_kind_with_its_price_units()
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        var list = (await client.GetFromJsonAsync<JsonObject>("/api/v1/models"))!["data"]!.AsArray().Select(m => m!.AsObject()).ToDictionary(m => m["id"]!.GetValue<string>());

        foreach (var (id, kind) in new[] { ("openai/dall-e-3", "image"), ("openai/gpt-image-1", "image"), ("openai/tts-1", "speech"), ("openai/whisper-1", "transcription"),
                     ("openai/omni-moderation-latest", "moderation"), ("openai/gpt-4o-realtime-preview", "realtime"), ("echo/echo-image", "image"), ("echo/echo-tts", "speech"),
                     ("echo/echo-whisper", "transcription"), ("echo/echo-moderation", "moderation"), ("echo/echo-realtime", "realtime"), ("openai/gpt-4o", "chat") })
            Assert.Equal(kind, list[id]["type"]!.GetValue<string>());

        var dalle = list["openai/dall-e-3"]["pricing"]!;
        var standard = dalle["images"]!.AsArray().Single(i => i!["size"]!.GetValue<string>() == "1024x1024" && i["quality"]!.GetValue<string>() == "standard")!;
        Assert.Equal(Usd(Ours(40_000)), standard["per_image"]!.GetValue<string>());
        Assert.Null(dalle["prompt"]);   // not priced per token
        Assert.Equal(Usd(Ours(15_000_000)), list["openai/tts-1"]["pricing"]!["per_million_characters"]!.GetValue<string>());
        Assert.Equal(Usd(Ours(6_000)), list["openai/whisper-1"]["pricing"]!["per_minute"]!.GetValue<string>());
        Assert.Equal("0", list["openai/omni-moderation-latest"]["pricing"]!["per_request"]!.GetValue<string>());
        Assert.Equal("free", list["openai/omni-moderation-latest"]["pricing"]!["units"]![0]!.GetValue<string>());
        var realtime = list["openai/gpt-4o-realtime-preview"]["pricing"]!;
        Assert.Equal(Usd(Ours(5_000_000)), realtime["prompt_per_million"]!.GetValue<string>());
        Assert.Equal(Usd(Ours(40_000_000)), realtime["audio_prompt_per_million"]!.GetValue<string>());
        Assert.Equal(Usd(Ours(80_000_000)), realtime["audio_completion_per_million"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_pricing_page_shows_each_kind_in_its_unit()
    {
        Assert.Equal(18_000, Margin);   // the hand-checked figures below are list price × 1.8
        var html = await (await app.CreateBrowserlessClient().GetAsync("/pricing")).Content.ReadAsStringAsync();

        Assert.Contains("data-media-model=\"openai/dall-e-3\"", html, StringComparison.Ordinal);
        Assert.Contains(">$0.072 / image 1024x1024 standard<", html, StringComparison.Ordinal);       // $0.040 × 1.8
        Assert.Contains(">$0.216 / image 1792x1024 hd<", html, StringComparison.Ordinal);             // $0.120 × 1.8
        Assert.Contains(">$27.00 / 1M characters<", html, StringComparison.Ordinal);                  // tts-1 $15 × 1.8
        Assert.Contains(">$0.0108 / minute<", html, StringComparison.Ordinal);                        // whisper-1 $0.006 × 1.8
        Assert.Contains(">free<", html, StringComparison.Ordinal);                                    // moderation
        Assert.Contains(">$72.00 / 1M audio input tokens<", html, StringComparison.Ordinal);          // realtime $40 × 1.8
        // Filtering by ?q= applies to the unit table too.
        var filtered = await (await app.CreateBrowserlessClient().GetAsync("/pricing?q=whisper")).Content.ReadAsStringAsync();
        Assert.Matches("<tr data-media-model=\"openai/dall-e-3\" data-search=\"[^\"]*\" hidden", filtered);
        Assert.DoesNotMatch("<tr data-media-model=\"openai/whisper-1\" data-search=\"[^\"]*\" hidden", filtered);
    }

    private static ModelSpec Spec(string kind, long? input = null, long? output = null, MediaPriceSpec? media = null) =>
        new("test/m", "M", kind, "test", 1000, 1, input, output, null, null, [], true, media);

    [Fact]
    public void Each_kind_must_carry_its_own_unit_and_no_other()
    {
        Assert.Empty(CatalogAdmin.Validate(Spec("image", media: MediaPriceSpec.None with { ImagePrices = """[{"size":"1024x1024","quality":"standard","micros":40000}]""" })));
        Assert.Empty(CatalogAdmin.Validate(Spec("speech", media: MediaPriceSpec.None with { MicrosPerMChar = 15_000_000 })));
        Assert.Empty(CatalogAdmin.Validate(Spec("transcription", media: MediaPriceSpec.None with { MicrosPerMinute = 6_000 })));
        Assert.Empty(CatalogAdmin.Validate(Spec("moderation")));
        Assert.Empty(CatalogAdmin.Validate(Spec("realtime", 5_000_000, 20_000_000, MediaPriceSpec.None with { AudioInputMicrosPerMTok = 1, AudioOutputMicrosPerMTok = 2 })));

        Assert.Contains(CatalogAdmin.Validate(Spec("image", 1, 1)), e => e.Field == "InputPrice");
        Assert.Contains(CatalogAdmin.Validate(Spec("chat", 1, 1, MediaPriceSpec.None with { MicrosPerMChar = 1 })), e => e.Field == "SpeechPrice");
        Assert.Contains(CatalogAdmin.Validate(Spec("speech", media: MediaPriceSpec.None with { MicrosPerMinute = 1 })), e => e.Field == "MinutePrice");
        Assert.Contains(CatalogAdmin.Validate(Spec("image", media: MediaPriceSpec.None with { ImagePrices = "[{\"size\":\"1024x1024\"}]" })), e => e.Field == "ImagePrices");
        Assert.Contains(CatalogAdmin.Validate(Spec("image", media: MediaPriceSpec.None with { ImagePrices = "not json" })), e => e.Field == "ImagePrices");
        Assert.Contains(CatalogAdmin.Validate(Spec("realtime", 1, 1, MediaPriceSpec.None with { AudioInputMicrosPerMTok = 1 })), e => e.Field == "AudioOutputPrice");
        Assert.Contains(CatalogAdmin.Validate(Spec("video")), e => e.Field == "Kind");
        Assert.Null(ImagePriceTable.FromLines("1024x1024 standard 0.04\n1024x1024 standard 0.05", out var twice));
        Assert.Contains("twice", twice, StringComparison.Ordinal);
        Assert.Equal([new ImagePrice("1024x1024", "hd", 80_000)], ImagePriceTable.FromLines(" 1024x1024 hd $0.08 ", out _));
    }

    [Fact]
    public async Task The_catalogue_file_carries_the_units_and_an_unpriced_kind_is_not_served()
    {
        await using var scope = app.Services.CreateAsyncScope();
        var admin = scope.ServiceProvider.GetRequiredService<CatalogAdmin>();
        var exported = await admin.ExportAsync(CancellationToken.None);
        var dalle = exported.Models!.Single(m => m.Id == "openai/dall-e-3");
        Assert.Contains(dalle.ImagePrices!, p => p is { Size: "1792x1024", Quality: "hd", Usd: 0.12m });
        Assert.Equal(15m, exported.Models!.Single(m => m.Id == "openai/tts-1").UsdPerMchar);

        // The export read back is the same catalogue: nothing to change (the new kinds; the seeded embedding models'
        // max output of 0 is refused by the validation that predates them).
        var reread = CatalogFile.Parse(exported.ToJson());
        reread = new CatalogFile([.. reread.Models!.Where(m => m.Kind is not ("chat" or "embedding"))]);
        Assert.Equal(11, reread.Models!.Count(m => m.Id!.StartsWith("openai/", StringComparison.Ordinal) || m.Id.StartsWith("echo/", StringComparison.Ordinal)));
        Assert.All(await admin.DiffAsync(reread, CancellationToken.None), line => Assert.Equal("unchanged", line.Action));

        // An image model whose table is empty is not served: not listed, not on sale.
        var id = $"test/img-{Guid.NewGuid():N}"[..20];
        var file = CatalogFile.Parse($$"""
            {"models":[{"id":"{{id}}","name":"No price","kind":"image","context_length":1000,"max_output_tokens":1,"routes":[{"provider":"echo","upstream_model":"echo-image"}]},
                       {"id":"{{id}}-ok","name":"Priced","kind":"speech","context_length":1000,"max_output_tokens":1,"usd_per_mchar":30,"routes":[{"provider":"echo","upstream_model":"echo-tts"}]}]}
            """);
        await admin.ImportAsync(file, CancellationToken.None);
        var catalog = app.Services.GetRequiredService<ModelCatalog>();
        await catalog.ReloadAsync(CancellationToken.None);
        Assert.False((await catalog.FindAsync(id, CancellationToken.None))!.IsServable);
        Assert.True((await catalog.FindAsync(id + "-ok", CancellationToken.None))!.IsServable);
        var (client, _, _) = await app.CreateApiClientAsync();
        var ids = (await client.GetFromJsonAsync<JsonObject>("/api/v1/models"))!["data"]!.AsArray().Select(m => m!["id"]!.GetValue<string>()).ToList();
        Assert.DoesNotContain(id, ids);
        Assert.Contains(id + "-ok", ids);

        var bad = CatalogFile.Parse($$"""{"models":[{"id":"{{id}}-bad","name":"Bad","kind":"image","context_length":1000,"max_output_tokens":1,"usd_per_minute":0.006}]}""");
        var refused = await Assert.ThrowsAsync<CatalogValidationException>(() => admin.DiffAsync(bad, CancellationToken.None));
        Assert.Contains("per minute applies to transcription models only", refused.Message, StringComparison.Ordinal);
    }
}
