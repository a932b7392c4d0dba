using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/moderations</c> in OpenAI's wire format (input: a string, an array of strings, or an array of
/// text and image_url parts; model). Free unless the catalogue sets a per-request price; either way the call is
/// admitted, reserved (for the per-request price, possibly zero) and leaves a usage row, like every other call.
/// </summary>
public sealed class ModerationsEndpoint(GatewayAdmission admission, ModelCatalog catalog, MediaPipeline pipeline,
    IOptions<GatewayOptions> options)
{
    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadObjectAsync(context, options.Value.MaxEmbeddingsRequestBytes) is not var (body, _)) return;
        if (body["input"] is not (JsonValue or JsonArray { Count: > 0 }) || body["input"] is JsonValue v && !v.TryGetValue<string>(out _))
        {
            await ApiErrors.InvalidRequestAsync(context, body["input"] is null
                ? "Missing required parameter: 'input'."
                : "Invalid 'input': expected a string, an array of strings, or an array of text and image_url parts.", "input");
            return;
        }
        // OpenAI's default model when none is named.
        var modelName = body["model"] is null ? "omni-moderation-latest" : RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'model': expected a string.", "model");
            return;
        }
        if (await MediaCall.ResolveAsync(context, catalog, key, modelName, ModelKinds.Moderation, "/moderations") is not { } model) return;

        var price = model.Media!.Moderation();
        await pipeline.RunAsync(context, key, model, price.ChargeMicros, stream: false, started,
            (provider, upstreamModel, apiKey) => MediaCall.OpenAiJson(provider, "moderations", body, upstreamModel, apiKey),
            async (route, charge) =>
        {
            var upstreamBytes = await GatewayResponses.ReadBeforeDeadlineAsync(route, options.Value.MaxUpstreamResponseBytes);
            JsonObject? response = null;
            try
            {
                if (upstreamBytes is not null) response = JsonNode.Parse(upstreamBytes) as JsonObject;
            }
            catch (JsonException) { }
            if (response?["results"] is not JsonArray)
            {
                await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider answered in an unexpected format.", "server_error", "upstream_error");
                return;
            }
            response["model"] = model.Id;
            var http = context.Response;
            http.ContentType = "application/json";
            http.Headers["X-AiGate-Cost-Usd"] = ModelPricing.MicrosToUsd(price.ChargeMicros).ToString(CultureInfo.InvariantCulture);
            GatewayResponses.SetServerTiming(http, started, route.UpstreamTime);
            charge.Bill(price);
            await using (var writer = new Utf8JsonWriter(http.BodyWriter))
                response.WriteTo(writer);
            try
            {
                await http.BodyWriter.FlushAsync(context.RequestAborted);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { }
        });
    }
}
