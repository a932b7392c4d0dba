using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/audio/transcriptions</c> and <c>/audio/translations</c>: OpenAI's multipart request (file, model,
/// language, prompt, response_format json|text|srt|verbose_json|vtt, temperature). The upload is capped at 25 MB while it
/// is read (413 beyond it); the form reader spools the file to disk, so it is never held in memory, and it is forwarded
/// from there. Priced per minute: the duration read from the file (<see cref="AudioDuration"/>, rounded up to whole
/// seconds) is reserved before anything goes upstream; the call settles on the provider's reported duration
/// (verbose_json <c>duration</c>, or <c>usage.seconds</c>) when it sends one, else on ours, never above the reservation.
/// </summary>
public sealed class TranscriptionsEndpoint(GatewayAdmission admission, ModelCatalog catalog, MediaPipeline pipeline,
    IOptions<GatewayOptions> options)
{
    public const long MaxFileBytes = 25 * 1024 * 1024;
    private static readonly string[] Formats = ["json", "text", "srt", "verbose_json", "vtt"];
    private static readonly FormOptions Form = new() { MultipartBodyLengthLimit = MaxFileBytes + 64 * 1024, ValueLengthLimit = 64 * 1024, ValueCountLimit = 32 };

    public Task TranscribeAsync(HttpContext context) => HandleAsync(context, "audio/transcriptions");
    public Task TranslateAsync(HttpContext context) => HandleAsync(context, "audio/translations");

    private async Task HandleAsync(HttpContext context, string path)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (!context.Request.HasFormContentType)
        {
            await ApiErrors.InvalidRequestAsync(context, "Expected a multipart/form-data body with 'file' and 'model'.", "file");
            return;
        }
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxFileBytes + 1024 * 1024;
        context.Features.Set<IFormFeature>(new FormFeature(context.Request, Form));
        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (Exception ex) when (ex is InvalidDataException or BadHttpRequestException)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status413PayloadTooLarge,
                $"The upload is too large: audio files may be at most {MaxFileBytes / 1024 / 1024} MB.", "invalid_request_error", "file_too_large", "file");
            return;
        }
        var file = form.Files["file"];
        if (file is null || file.Length == 0)
        {
            await ApiErrors.InvalidRequestAsync(context, "Missing required parameter: 'file'.", "file");
            return;
        }
        if (file.Length > MaxFileBytes)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status413PayloadTooLarge,
                $"The upload is too large: audio files may be at most {MaxFileBytes / 1024 / 1024} MB.", "invalid_request_error", "file_too_large", "file");
            return;
        }
        var modelName = form["model"].ToString();
        if (modelName.Length == 0)
        {
            await ApiErrors.InvalidRequestAsync(context, "Missing required parameter: 'model'.", "model");
            return;
        }
        var format = form["response_format"].ToString();
        if (format.Length > 0 && !Formats.Contains(format))
        {
            await ApiErrors.InvalidRequestAsync(context, $"Invalid 'response_format': expected one of {string.Join(", ", Formats)}.", "response_format");
            return;
        }
        if (await MediaCall.ResolveAsync(context, catalog, key, modelName, ModelKinds.Transcription, "/" + path) is not { } model) return;

        double measured;
        await using (var audio = file.OpenReadStream())
            (measured, _) = AudioDuration.Read(audio, file.Length);
        var seconds = Math.Max(1, (long)Math.Ceiling(measured));
        var media = model.Media!;
        var streams = new List<Stream>();
        try
        {
            await pipeline.RunAsync(context, key, model, media.Transcription(seconds).ChargeMicros, stream: false, started,
                (provider, upstreamModel, apiKey) => Build(provider, path, form, file, upstreamModel, apiKey, streams),
                async (route, charge) =>
            {
                var upstreamBytes = await GatewayResponses.ReadBeforeDeadlineAsync(route, options.Value.MaxUpstreamResponseBytes);
                if (upstreamBytes is null)
                {
                    await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider did not answer in time.", "server_error", "upstream_error");
                    return;
                }
                var reported = ReportedSeconds(upstreamBytes);
                var billed = Math.Min(seconds, reported is { } r ? Math.Max(1, (long)Math.Ceiling(r)) : seconds);
                var cost = media.Transcription(billed);
                var http = context.Response;
                http.ContentType = route.Response!.Content.Headers.ContentType?.ToString() ?? "application/json";
                http.Headers["X-AiGate-Cost-Usd"] = ModelPricing.MicrosToUsd(cost.ChargeMicros).ToString(CultureInfo.InvariantCulture);
                http.Headers["X-AiGate-Audio-Seconds"] = billed.ToString(CultureInfo.InvariantCulture);
                GatewayResponses.SetServerTiming(http, started, route.UpstreamTime);
                charge.Bill(cost);
                try
                {
                    await http.Body.WriteAsync(upstreamBytes, context.RequestAborted);
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { }   // transcribed, so billed
            });
        }
        finally
        {
            foreach (var stream in streams) await stream.DisposeAsync();
        }
    }

    /// <summary>The multipart request for an OpenAI-format provider: every field as the client sent it, the upstream's model name, the file streamed from the spool.</summary>
    private static HttpRequestMessage? Build(Provider provider, string path, IFormCollection form, IFormFile file, string upstreamModel, string? apiKey, List<Stream> streams)
    {
        if (provider.Kind is not (ProviderKind.OpenAi or ProviderKind.Echo)) return null;
        var content = new MultipartFormDataContent();
        foreach (var (name, values) in form)
            foreach (var value in values)
                content.Add(new StringContent(name == "model" ? upstreamModel : value ?? ""), name);
        var stream = file.OpenReadStream();
        streams.Add(stream);
        var part = new StreamContent(stream);
        part.Headers.ContentType = MediaTypeHeaderValue.TryParse(file.ContentType, out var type) ? type : new MediaTypeHeaderValue("application/octet-stream");
        content.Add(part, "file", file.FileName);
        var request = new HttpRequestMessage(HttpMethod.Post, provider.Url(path)) { Content = content };
        if (!string.IsNullOrEmpty(apiKey)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return request;
    }

    /// <summary>The provider's duration: verbose_json's <c>duration</c>, or <c>usage.seconds</c> (<c>"type":"duration"</c>); null for text formats.</summary>
    private static double? ReportedSeconds(byte[] body)
    {
        try
        {
            if (JsonNode.Parse(body) is not JsonObject json) return null;
            if (json["duration"] is JsonValue d && d.TryGetValue<double>(out var duration) && duration >= 0) return duration;
            if (json["usage"] is JsonObject usage && usage["seconds"] is JsonValue s && s.TryGetValue<double>(out var seconds) && seconds >= 0) return seconds;
        }
        catch (JsonException) { }
        return null;
    }
}
