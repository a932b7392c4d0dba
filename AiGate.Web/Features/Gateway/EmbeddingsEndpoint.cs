using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Byok;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/embeddings</c>. <c>encoding_format</c> <c>float</c> or <c>base64</c> (what the
/// official SDKs ask for by default) passes through to the provider, which encodes the vectors.
/// </summary>
public sealed class EmbeddingsEndpoint(GatewayAdmission admission, ModelCatalog catalog, UpstreamRouter router, Metering metering, RateLimits rateLimits,
    IOptions<GatewayOptions> options, ByokGateway byokGateway)
{
    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadObjectAsync(context, options.Value.MaxEmbeddingsRequestBytes) is not var (body, bytes)) return;
        var modelName = RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "model");
            return;
        }
        if (body["input"] is not (JsonValue or JsonArray { Count: > 0 }))
        {
            await ApiErrors.InvalidRequestAsync(context, body["input"] is null
                ? "Missing required parameter: 'input'."
                : "Invalid 'input': expected a string, an array of strings, or an array of token arrays.", "input");
            return;
        }
        if (body["encoding_format"] is { } format && (format is not JsonValue v || !v.TryGetValue<string>(out var f) || f is not ("float" or "base64")))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'encoding_format': expected 'float' or 'base64'.", "encoding_format");
            return;
        }
        var model = await catalog.FindAsync(modelName, context.RequestAborted);
        if (model is null)
        {
            await ApiErrors.ModelNotFoundAsync(context, modelName);
            return;
        }
        if (key.AllowedModels.Count > 0 && !key.AllowedModels.Contains(model.Id))
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status403Forbidden, $"This API key may not use the model `{model.Id}`.",
                "invalid_request_error", "model_not_allowed", "model");
            return;
        }
        if (model.Kind != "embedding")
        {
            await ApiErrors.InvalidRequestAsync(context, $"`{model.Id}` is not an embedding model.", "model");
            return;
        }
        if (model.Pricing is not { } pricing || model.Routes.Count == 0)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, $"`{model.Id}` is temporarily unavailable.",
                "server_error", "model_unavailable", "model");
            return;
        }

        var (byokRefused, byok) = await byokGateway.ForCallAsync(context, key, model);
        if (byokRefused) return;
        if (!await rateLimits.AdmitTokensAsync(context, key, bytes / 4 + 1)) return;
        // Every request byte as a third of a token: inputs may be token-id arrays, which no tokenizer count bounds.
        var worstCase = Metering.WorstCaseMicros(byokGateway.ReservePricing(byok, model), bytes / 3 + 1, 0);
        if (await metering.ReserveOrRefuseAsync(context, key, worstCase) is not { } reservation) return;
        var outcome = MeteredOutcome.Unserved(streamed: false);
        try
        {
            using var route = await router.SendAsync(model, stream: false, (provider, upstreamModel, apiKey) =>
                provider.Adapter.CreateEmbeddingsRequest(provider, body, upstreamModel, apiKey), context.RequestAborted, byok);
            // Served with the user's own key: billed the BYOK fee.
            if (route.Byok) pricing = byok!.FeePricing;
            if (await GatewayResponses.WriteRouteFailureAsync(context, route))
            {
                outcome = outcome with { Provider = route.Provider?.Name ?? "", Status = context.Response.StatusCode };
                return;
            }

            var provider = route.Provider!;
            var upstreamBytes = await GatewayResponses.ReadBeforeDeadlineAsync(route, options.Value.MaxUpstreamResponseBytes);
            ChatCompletionResult? result = null;
            try
            {
                if (upstreamBytes is not null) result = provider.Adapter.ReadEmbeddings(upstreamBytes, model.Id);
            }
            catch (UpstreamProtocolException) { }
            if (result is null)
            {
                await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider answered in an unexpected format.", "server_error", "upstream_error");
                outcome = outcome with { Provider = provider.Name };
                return;
            }
            var usage = result.Usage ?? new TokenUsage(bytes / 4 + 1, 0, Estimated: true);
            var cost = pricing.CostMicros(usage);
            result.Response["usage"] = new JsonObject
            {
                ["prompt_tokens"] = usage.PromptTokens, ["total_tokens"] = usage.PromptTokens, ["cost"] = ModelPricing.MicrosToUsd(cost),
            };
            var response = context.Response;
            response.ContentType = "application/json";
            response.Headers["X-AiGate-Provider"] = provider.Name;
            if (route.Byok) response.Headers["X-AiGate-Byok"] = "true";
            response.Headers["X-AiGate-Cost-Usd"] = ModelPricing.MicrosToUsd(cost).ToString(System.Globalization.CultureInfo.InvariantCulture);
            GatewayResponses.SetServerTiming(response, started, route.UpstreamTime);
            await using (var writer = new Utf8JsonWriter(response.BodyWriter))
                result.Response.WriteTo(writer);
            outcome = new MeteredOutcome(provider.Name, usage, StatusCodes.Status200OK, false, (int)route.UpstreamTime.TotalMilliseconds, pricing, route.Byok);
            try
            {
                await response.BodyWriter.FlushAsync(context.RequestAborted);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { }   // computed, so billed
        }
        finally
        {
            await metering.CompleteAsync(context, reservation, key, model, outcome, started);
        }
    }
}
