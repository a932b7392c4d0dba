using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Images;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/images/generations</c> through the real app: the official OpenAI SDK's ImageClient unchanged, the fake
/// OpenAI speaking its images wire format, charges exact (n × per-image price × margin, settled on the images returned),
/// refused before upstream when the balance does not cover n images, errors in OpenAI's envelope, the echo provider offline.
/// </summary>
public sealed class ImagesEndpointTests(MediaApp app) : IClassFixture<MediaApp>
{
    private const long Credit = 10_000_000;

    [Fact]
    public async Task The_sdk_generates_images_and_pays_n_times_the_price_of_their_size_and_quality()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var images = (await app.Sdk(key).GetImageClient(MediaApp.GptImage).GenerateImagesAsync("A lighthouse at dawn", 3,
            new ImageGenerationOptions { Quality = new GeneratedImageQuality("high"), Size = GeneratedImageSize.W1024xH1024 })).Value;

        Assert.Equal(3, images.Count);
        Assert.Equal(Convert.FromBase64String(Infrastructure.FakeOpenAi.Png), images[0].ImageBytes.ToArray());
        // 3 × $0.167 × 1.5 = $0.7515
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 751_500);
        var usage = await app.UsageRowAsync(userId);
        Assert.Equal((MediaApp.GptImage, 751_500L, 200), usage);
        var sent = JsonNode.Parse(app.OpenAi.Requests.Last(r => r.PathAndQuery == "/v1/images/generations").Body)!;
        Assert.Equal("gpt-image-1", sent["model"]!.GetValue<string>());   // the upstream's name, the rest as the client sent it
        Assert.Equal(3, sent["n"]!.GetValue<int>());
    }

    [Fact]
    public async Task Dall_e_3_defaults_to_standard_quality_and_returns_urls()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var image = (await app.Sdk(key).GetImageClient(MediaApp.DallE).GenerateImageAsync("A cat",
            new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Uri })).Value;

        Assert.StartsWith("https://", image.ImageUri.ToString(), StringComparison.Ordinal);
        Assert.Equal("A revised prompt.", image.RevisedPrompt);
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 60_000);   // $0.040 × 1.5
    }

    [Fact]
    public async Task Fewer_images_returned_cost_fewer()
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        app.OpenAi.ImagesReturned = 1;
        try
        {
            var response = await client.PostAsJsonAsync("/api/v1/images/generations", new { model = MediaApp.GptImage, prompt = "Three boats", n = 3, quality = "low" });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Single((await response.Content.ReadFromJsonAsync<JsonObject>())!["data"]!.AsArray());
            Assert.Equal("0.0165", response.Headers.GetValues("X-AiGate-Cost-Usd").Single());
        }
        finally
        {
            app.OpenAi.ImagesReturned = null;
        }
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 16_500);   // 1 × $0.011 × 1.5, not 3
    }

    [Fact]
    public async Task Insufficient_credit_is_refused_before_anything_goes_upstream()
    {
        // $0.30 covers one high-quality image ($0.2505) but not two.
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 300_000);
        var before = app.OpenAi.ImageRequests;

        var response = await client.PostAsJsonAsync("/api/v1/images/generations", new { model = MediaApp.GptImage, prompt = "Two", n = 2, quality = "high" });

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("insufficient_credits", error["code"]!.GetValue<string>());
        Assert.Contains("$0.501", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(before, app.OpenAi.ImageRequests);
        await app.AssertLedgerMatchesBalanceAsync(userId, 300_000);
    }

    [Theory]
    [InlineData("""{"model":"test/dall-e-3","prompt":"x","size":"256x256"}""", "size")]
    [InlineData("""{"model":"test/dall-e-3","prompt":"x","quality":"ultra"}""", "quality")]
    [InlineData("""{"model":"test/dall-e-3","prompt":"x","n":11}""", "n")]
    [InlineData("""{"model":"test/dall-e-3","prompt":"x","response_format":"gif"}""", "response_format")]
    [InlineData("""{"model":"test/dall-e-3"}""", "prompt")]
    [InlineData("""{"prompt":"x"}""", "model")]
    [InlineData("""{"model":"echo/echo-1","prompt":"x"}""", "model")]
    public async Task Bad_requests_get_a_400_in_openais_envelope_and_cost_nothing(string json, string param)
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var before = app.OpenAi.ImageRequests;

        var response = await client.PostAsync("/api/v1/images/generations", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.Equal(before, app.OpenAi.ImageRequests);
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit);
    }

    [Fact]
    public async Task The_echo_provider_answers_offline_with_a_valid_png()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var image = (await app.Sdk(key).GetImageClient("echo/echo-image").GenerateImageAsync("anything",
            new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Bytes })).Value;

        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], image.ImageBytes.ToArray()[..4]);
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 72_000);   // $0.040 × the default ×1.8
    }
}
