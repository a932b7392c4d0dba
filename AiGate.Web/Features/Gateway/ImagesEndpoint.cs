using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/images/generations</c> in OpenAI's wire format (prompt, model, n, size, quality, response_format,
/// style, user…; the body passes through with the upstream's model name). Priced per image by size and quality
/// (<see cref="MediaPricing"/>): n images at that price are reserved before anything goes upstream, and the call
/// settles on the images the provider actually returned (never more than n). The cost goes in the
/// <c>X-AiGate-Cost-Usd</c> header: OpenAI's image response has no field for it.
/// </summary>
public sealed class ImagesEndpoint(GatewayAdmission admission, ModelCatalog catalog, MediaPipeline pipeline, IOptions<GatewayOptions> options)
{
    /// <summary>OpenAI's own bounds: at most 10 images a request, prompts of at most 32,000 characters (gpt-image-1).</summary>
    private const int MaxImages = 10;
    private const int MaxPromptChars = 32_000;
    private const long MaxRequestBytes = 256 * 1024;
    private const string DefaultSize = "1024x1024";

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
        var prompt = RequestBody.RequiredString(body, "prompt", out error);
        if (prompt is null || prompt.Length == 0 || prompt.Length > MaxPromptChars)
        {
            await ApiErrors.InvalidRequestAsync(context, error ?? $"Invalid 'prompt': expected between 1 and {MaxPromptChars} characters.", "prompt");
            return;
        }
        if (!RequestBody.OptionalInt(body, "n", 1, MaxImages, out var requested, out error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "n");
            return;
        }
        var n = (int)(requested ?? 1);
        if (await MediaCall.OptionalChoiceAsync(context, body, "size") is not (true, var size)) return;
        if (await MediaCall.OptionalChoiceAsync(context, body, "quality") is not (true, var quality)) return;
        if (await MediaCall.OptionalChoiceAsync(context, body, "response_format", "url", "b64_json") is not (true, _)) return;
        if (await MediaCall.ResolveAsync(context, catalog, key, modelName, ModelKinds.Image, "/images/generations") is not { } model) return;

        var media = model.Media!;
        size = size is null or "auto" ? DefaultSize : size;
        // No quality (or "auto") lets the provider choose: reserved and billed at the dearest quality sold at that size.
        // A model with a "standard" quality (DALL·E 3) defaults to it, as OpenAI does.
        quality = quality is null or "auto"
            ? (quality is null && media.ImageListMicros(size, "standard") is not null ? "standard" : media.DearestQuality(size))
            : quality;
        if (quality is null || media.ImageListMicros(size, quality) is not { } perImage)
        {
            await ApiErrors.InvalidRequestAsync(context, $"`{model.Id}` does not offer size '{size}'{(quality is null ? "" : $" at quality '{quality}'")}. " +
                $"Priced: {string.Join(", ", media.ImagePrices.Select(p => p.Size + " " + p.Quality))}.", quality is null ? "size" : "quality");
            return;
        }

        await pipeline.RunAsync(context, key, model, media.Images(perImage, n).ChargeMicros, stream: false, started,
            (provider, upstreamModel, apiKey) => MediaCall.OpenAiJson(provider, "images/generations", body, upstreamModel, apiKey),
            async (route, charge) =>
        {
            var upstreamBytes = await GatewayResponses.ReadBeforeDeadlineAsync(route, options.Value.MaxUpstreamResponseBytes * MaxImages);
            JsonObject? response = null;
            try
            {
                if (upstreamBytes is not null) response = JsonNode.Parse(upstreamBytes) as JsonObject;
            }
            catch (JsonException) { }
            if (response?["data"] is not JsonArray data)
            {
                await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider answered in an unexpected format.", "server_error", "upstream_error");
                return;
            }
            // Fewer images than asked (a refused prompt, a partial failure) cost fewer; more than asked are not billed beyond n.
            var cost = media.Images(perImage, Math.Min(data.Count, n));
            var http = context.Response;
            http.ContentType = "application/json";
            http.Headers["X-AiGate-Cost-Usd"] = ModelPricing.MicrosToUsd(cost.ChargeMicros).ToString(CultureInfo.InvariantCulture);
            GatewayResponses.SetServerTiming(http, started, route.UpstreamTime);
            charge.Bill(cost);
            try
            {
                await http.Body.WriteAsync(upstreamBytes, context.RequestAborted);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { }   // generated, so billed
        });
    }
}
