using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Infrastructure;
using OpenAI;
using OpenAI.Audio;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/audio/speech</c> through the real app: the official SDK's AudioClient unchanged, the fake OpenAI's
/// chunked audio, the charge per million input characters (reserved = charged), audio streamed as it comes, a client that
/// leaves billed, insufficient credit refused before upstream, the echo provider's WAV.
/// </summary>
public sealed class AudioEndpointTests(MediaApp app) : IClassFixture<MediaApp>
{
    private const long Credit = 10_000_000;

    private OpenAIClient Sdk(string key) => new(new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = new Uri(app.Server.BaseAddress, "/api/v1"),
        Transport = new HttpClientPipelineTransport(app.CreateClient()),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
    });

    [Fact]
    public async Task The_sdk_gets_the_providers_audio_and_pays_per_character()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var text = new string('a', 999) + "é";   // 1,000 characters (1,001 UTF-8 bytes)
        var audio = (await Sdk(key).GetAudioClient(MediaApp.Tts).GenerateSpeechAsync(text, GeneratedSpeechVoice.Alloy)).Value;

        Assert.Equal(FakeOpenAi.SpeechAudio, audio.ToArray());
        // 1,000 characters × $15 / 1M × 1.5 = $0.0225
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 22_500);
        Assert.Equal((MediaApp.Tts, 22_500L, 200), await app.UsageRowAsync(userId));
        var sent = JsonNode.Parse(app.OpenAi.Requests.Last(r => r.PathAndQuery == "/v1/audio/speech").Body)!;
        Assert.Equal("tts-1", sent["model"]!.GetValue<string>());
        Assert.Equal("alloy", sent["voice"]!.GetValue<string>());
    }

    [Fact]
    public async Task Audio_is_streamed_as_it_comes_with_the_providers_content_type_and_a_client_that_leaves_is_billed()
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.OpenAi.SpeechGate = gate;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/audio/speech")
            {
                Content = JsonContent.Create(new { model = MediaApp.Tts, input = "Hello there", voice = "nova", response_format = "wav" }),
            };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("audio/wav", response.Content.Headers.ContentType!.MediaType);
            await using var stream = await response.Content.ReadAsStreamAsync();
            var first = new byte[1000];
            // The first chunk arrives while the provider is still holding back the rest: nothing is buffered whole.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await stream.ReadExactlyAsync(first, timeout.Token);
            Assert.Equal(FakeOpenAi.SpeechAudio[..1000], first);
            Assert.False(gate.Task.IsCompleted);
        }
        finally
        {
            app.OpenAi.SpeechGate = null;
            gate.TrySetResult();
        }
        // The client left after the first chunk: 11 characters × $15 / 1M × 1.5 = $0.0002475, rounded up.
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 248);
    }

    [Fact]
    public async Task Insufficient_credit_is_refused_before_anything_goes_upstream()
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 10);
        var before = app.OpenAi.SpeechRequests;
        var response = await client.PostAsJsonAsync("/api/v1/audio/speech", new { model = MediaApp.Tts, input = new string('x', 4096), voice = "alloy" });

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.Equal("insufficient_credits", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        Assert.Equal(before, app.OpenAi.SpeechRequests);
        await app.AssertLedgerMatchesBalanceAsync(userId, 10);
    }

    [Theory]
    [InlineData("""{"model":"test/tts-1","voice":"alloy"}""", "input")]
    [InlineData("""{"model":"test/tts-1","voice":"alloy","input":""}""", "input")]
    [InlineData("""{"model":"test/tts-1","input":"hi"}""", "voice")]
    [InlineData("""{"model":"test/tts-1","input":"hi","voice":"alloy","speed":9}""", "speed")]
    [InlineData("""{"model":"test/tts-1","input":"hi","voice":"alloy","response_format":"ogg"}""", "response_format")]
    [InlineData("""{"model":"test/dall-e-3","input":"hi","voice":"alloy"}""", "model")]
    public async Task Bad_requests_get_a_400_in_openais_envelope(string json, string param)
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: Credit);
        var response = await client.PostAsync("/api/v1/audio/speech", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task Input_over_4096_characters_is_refused()
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: Credit);
        var response = await client.PostAsJsonAsync("/api/v1/audio/speech", new { model = MediaApp.Tts, input = new string('x', 4097), voice = "alloy" });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task The_echo_provider_says_a_short_wav()
    {
        var (_, key, _) = await app.CreateApiClientAsync(creditMicros: Credit);
        var audio = (await Sdk(key).GetAudioClient("echo/echo-tts").GenerateSpeechAsync("hi", GeneratedSpeechVoice.Echo)).Value.ToArray();
        Assert.Equal("RIFF", System.Text.Encoding.ASCII.GetString(audio, 0, 4));
        Assert.Equal("WAVE", System.Text.Encoding.ASCII.GetString(audio, 8, 4));
    }
}
