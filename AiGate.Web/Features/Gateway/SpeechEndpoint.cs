using System.Diagnostics;
using System.Globalization;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/audio/speech</c> in OpenAI's wire format (model, input of at most 4,096 characters, voice,
/// response_format, speed, instructions). Priced per million input characters, known before the call, so the
/// reservation is the charge. The audio is copied to the client as the provider sends it, with the provider's
/// content type (never buffered whole); once the provider answered, a client that leaves is still billed: the
/// audio was generated.
/// </summary>
public sealed class SpeechEndpoint(GatewayAdmission admission, ModelCatalog catalog, MediaPipeline pipeline)
{
    private const int MaxInputChars = 4096;
    private const long MaxRequestBytes = 64 * 1024;
    private static readonly string[] Formats = ["mp3", "opus", "aac", "flac", "wav", "pcm"];

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadObjectAsync(context, MaxRequestBytes) is not var (body, _)) return;
        var modelName = RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "model");
            return;
        }
        var input = RequestBody.RequiredString(body, "input", out error);
        // OpenAI counts characters; so do we (Unicode scalar values, so an emoji is one, as a person counts it).
        var characters = input?.EnumerateRunes().Count() ?? 0;
        if (input is null || characters is 0 or > MaxInputChars)
        {
            await ApiErrors.InvalidRequestAsync(context, error ?? $"Invalid 'input': expected between 1 and {MaxInputChars} characters.", "input");
            return;
        }
        if (RequestBody.RequiredString(body, "voice", out error) is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "voice");
            return;
        }
        if (await MediaCall.OptionalChoiceAsync(context, body, "response_format", Formats) is not (true, _)) return;
        if (!RequestBody.OptionalNumber(body, "speed", 0.25, 4.0, out error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "speed");
            return;
        }
        if (await MediaCall.ResolveAsync(context, catalog, key, modelName, ModelKinds.Speech, "/audio/speech") is not { } model) return;

        var price = model.Media!.Speech(characters);
        await pipeline.RunAsync(context, key, model, price.ChargeMicros, stream: true, started,
            (provider, upstreamModel, apiKey) => MediaCall.OpenAiJson(provider, "audio/speech", body, upstreamModel, apiKey),
            async (route, charge) =>
        {
            var provider = route.Provider!;
            var upstream = route.Response!;
            var http = context.Response;
            http.ContentType = upstream.Content.Headers.ContentType?.ToString() ?? "application/octet-stream";
            http.Headers["X-AiGate-Cost-Usd"] = ModelPricing.MicrosToUsd(price.ChargeMicros).ToString(CultureInfo.InvariantCulture);
            GatewayResponses.SetServerTiming(http, started, route.UpstreamTime);
            // The provider accepted the text and is generating: billed from here on, whatever the client does.
            charge.Bill(price);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            deadline.CancelAfter(provider.NonStreamTimeout);
            try
            {
                await using var audio = await upstream.Content.ReadAsStreamAsync(deadline.Token);
                await http.StartAsync(deadline.Token);
                // Chunk by chunk as the provider sends them: CopyToAsync flushes each read to the client.
                await audio.CopyToAsync(http.Body, 16 * 1024, deadline.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException)
            {
                // The client left, or the provider broke off mid-audio: the connection ends short, the audio is billed.
                context.Abort();
            }
        });
    }
}
