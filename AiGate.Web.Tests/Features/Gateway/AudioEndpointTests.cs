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

    [Fact]
    public async Task The_sdk_gets_the_providers_audio_and_pays_per_character()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var text = new string('a', 999) + "é";   // 1,000 characters (1,001 UTF-8 bytes)
        var audio = (await app.Sdk(key).GetAudioClient(MediaApp.Tts).GenerateSpeechAsync(text, GeneratedSpeechVoice.Alloy)).Value;

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
        await app.WaitForUsageRowAsync(userId);
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
        var audio = (await app.Sdk(key).GetAudioClient("echo/echo-tts").GenerateSpeechAsync("hi", GeneratedSpeechVoice.Echo)).Value.ToArray();
        Assert.Equal("RIFF", System.Text.Encoding.ASCII.GetString(audio, 0, 4));
        Assert.Equal("WAVE", System.Text.Encoding.ASCII.GetString(audio, 8, 4));
    }

    /// <summary>A PCM WAV of exactly <paramref name="samples"/> 16-bit mono samples at 8 kHz, with a LIST chunk before the data (as many recorders write).</summary>
    private static byte[] Wav(int samples)
    {
        using var wav = new MemoryStream();
        using var w = new BinaryWriter(wav);
        var list = "LIST"u8.ToArray();
        w.Write("RIFF"u8); w.Write(36 + 12 + samples * 2); w.Write("WAVE"u8);
        w.Write("fmt "u8); w.Write(16); w.Write((short)1); w.Write((short)1); w.Write(8000); w.Write(16000); w.Write((short)2); w.Write((short)16);
        w.Write(list); w.Write(4); w.Write("INFO"u8);
        w.Write("data"u8); w.Write(samples * 2); w.Write(new byte[samples * 2]);
        w.Flush();
        return wav.ToArray();
    }

    [Fact]
    public void The_duration_of_a_wav_is_read_exactly_and_an_unknown_format_at_the_worst_case()
    {
        using var wav = new MemoryStream(Wav(81_600));
        Assert.Equal((10.2, "wav"), AiGate.Web.Features.Gateway.AudioDuration.Read(wav, wav.Length));
        using var unknown = new MemoryStream(new byte[20_000]);
        // 20,000 bytes at the 8 kbit/s floor: 20 seconds.
        Assert.Equal((20.0, "size"), AiGate.Web.Features.Gateway.AudioDuration.Read(unknown, unknown.Length));
    }

    [Fact]
    public async Task The_sdk_transcribes_and_pays_the_providers_duration()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        app.OpenAi.TranscriptionSeconds = 10;
        using var audio = new MemoryStream(Wav(81_600));   // 10.2 s: 11 s reserved
        var transcription = (await app.Sdk(key).GetAudioClient(MediaApp.Whisper).TranscribeAudioAsync(audio, "speech.wav")).Value;

        Assert.Equal("Hello from the fake transcriber.", transcription.Text);
        // The provider's 10 s × $0.006 / 60 × 1.5 = $0.0015
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 1_500);
        Assert.Equal((MediaApp.Whisper, 1_500L, 200), await app.UsageRowAsync(userId));
        var upload = app.OpenAi.LastUpload!.Value;
        Assert.Equal(Wav(81_600), upload.File);   // forwarded byte for byte
        Assert.Equal("speech.wav", upload.FileName);
        Assert.Equal("whisper-1", upload.Fields["model"]);
    }

    [Fact]
    public async Task A_provider_duration_above_the_files_is_capped_and_a_text_answer_pays_ours()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        app.OpenAi.TranscriptionSeconds = 600;
        try
        {
            using var audio = new MemoryStream(Wav(81_600));
            var verbose = (await app.Sdk(key).GetAudioClient(MediaApp.Whisper).TranscribeAudioAsync(audio, "a.wav",
                new AudioTranscriptionOptions { ResponseFormat = AudioTranscriptionFormat.Verbose })).Value;
            Assert.Equal(TimeSpan.FromSeconds(600), verbose.Duration);
            await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 1_650);   // capped at our 11 s
        }
        finally
        {
            app.OpenAi.TranscriptionSeconds = 10;
        }
        using var again = new MemoryStream(Wav(81_600));
        var translated = (await app.Sdk(key).GetAudioClient(MediaApp.Whisper).TranslateAudioAsync(again, "a.wav",
            new AudioTranslationOptions { ResponseFormat = AudioTranslationFormat.Text })).Value;
        Assert.Equal("Hello from the fake transcriber.", translated.Text.Trim());
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 3_300);   // text reports no duration: our 11 s
    }

    private static MultipartFormDataContent Upload(byte[] file, string model = MediaApp.Whisper)
    {
        var content = new MultipartFormDataContent { { new StringContent(model), "model" } };
        content.Add(new ByteArrayContent(file), "file", "a.wav");
        return content;
    }

    [Fact]
    public async Task An_upload_over_25_mb_is_refused_with_413_before_upstream()
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var before = app.OpenAi.TranscriptionRequests;
        var response = await client.PostAsync("/api/v1/audio/transcriptions", Upload(new byte[25 * 1024 * 1024 + 1]));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("file_too_large", error["code"]!.GetValue<string>());
        Assert.Equal(before, app.OpenAi.TranscriptionRequests);
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit);
    }

    [Fact]
    public async Task A_transcription_the_balance_cannot_cover_is_refused_before_upstream()
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000);
        var before = app.OpenAi.TranscriptionRequests;
        var response = await client.PostAsync("/api/v1/audio/transcriptions", Upload(Wav(81_600)));   // 11 s = $0.00165

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.Equal(before, app.OpenAi.TranscriptionRequests);
        await app.AssertLedgerMatchesBalanceAsync(userId, 1_000);
    }

    [Fact]
    public async Task Transcription_errors_are_in_openais_envelope()
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: Credit);
        var noFile = await client.PostAsync("/api/v1/audio/transcriptions", new MultipartFormDataContent { { new StringContent(MediaApp.Whisper), "model" } });
        Assert.Equal(HttpStatusCode.BadRequest, noFile.StatusCode);
        Assert.Equal("file", (await noFile.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["param"]!.GetValue<string>());
        var json = await client.PostAsJsonAsync("/api/v1/audio/transcriptions", new { model = MediaApp.Whisper });
        Assert.Equal(HttpStatusCode.BadRequest, json.StatusCode);
        var wrongKind = await client.PostAsync("/api/v1/audio/transcriptions", Upload(Wav(800), MediaApp.Tts));
        Assert.Equal("model", (await wrongKind.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_echo_provider_states_the_duration()
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: Credit);
        var response = await client.PostAsync("/api/v1/audio/transcriptions", Upload(Wav(81_600), "echo/echo-whisper"));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal("Echo: 10.2 seconds of audio (wav).", (await response.Content.ReadFromJsonAsync<JsonObject>())!["text"]!.GetValue<string>());
    }
}
