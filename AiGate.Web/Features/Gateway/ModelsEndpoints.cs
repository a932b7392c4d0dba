using System.Globalization;
using System.Text.Json;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>GET /api/v1/models</c> and <c>/api/v1/models/{id}</c>: OpenAI's list shape (<c>id</c>, <c>object</c>,
/// <c>created</c>, <c>owned_by</c>) plus our fields: name, context length, and our prices (margin
/// included) per token and per million tokens, as strings of USD so no client rounds them.
/// Only models that can be served (priced, with a configured provider) are listed.
/// </summary>
public sealed class ModelsEndpoints(ApiKeyAuthenticator authenticator, ModelCatalog catalog)
{
    public async Task ListAsync(HttpContext context)
    {
        if (await authenticator.AuthenticateAsync(context) is not { } key)
        {
            await ApiErrors.InvalidApiKeyAsync(context);
            return;
        }
        var models = (await catalog.GetAllAsync(context.RequestAborted)).Where(m => m.IsServable && (key.AllowedModels.Count == 0 || key.AllowedModels.Contains(m.Id)));
        context.Response.ContentType = "application/json";
        await using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("object", "list");
            writer.WriteStartArray("data");
            foreach (var model in models) Write(writer, model);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    public async Task GetAsync(HttpContext context)
    {
        if (await authenticator.AuthenticateAsync(context) is not { } key)
        {
            await ApiErrors.InvalidApiKeyAsync(context);
            return;
        }
        // SDKs escape the "/" of "provider/model"; routing leaves %2F as it is.
        var id = Uri.UnescapeDataString(context.Request.RouteValues["id"] as string ?? "");
        var model = await catalog.FindAsync(id, context.RequestAborted);
        if (model is not { IsServable: true } || (key.AllowedModels.Count > 0 && !key.AllowedModels.Contains(model.Id)))
        {
            await ApiErrors.ModelNotFoundAsync(context, id);
            return;
        }
        context.Response.ContentType = "application/json";
        await using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
            Write(writer, model);
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    private static void Write(Utf8JsonWriter writer, ResolvedModel model)
    {
        writer.WriteStartObject();
        writer.WriteString("id", model.Id);
        writer.WriteString("object", "model");
        writer.WriteNumber("created", model.CreatedAt.ToUnixTimeSeconds());
        writer.WriteString("owned_by", model.OwnedBy);
        writer.WriteString("name", model.Name);
        writer.WriteString("type", model.Kind);
        writer.WriteNumber("context_length", model.ContextLength);
        writer.WriteNumber("max_output_tokens", model.MaxOutputTokens);
        writer.WriteStartObject("pricing");
        if (model.Pricing is { } pricing && ModelKinds.IsTokenPriced(model.Kind))
        {
            writer.WriteString("prompt", PerToken(pricing.OurInputPerMTok));
            writer.WriteString("completion", PerToken(pricing.OurOutputPerMTok));
            writer.WriteString("cached_prompt", PerToken(pricing.OurCachedInputPerMTok));
            writer.WriteString("prompt_per_million", PerMillion(pricing.OurInputPerMTok));
            writer.WriteString("completion_per_million", PerMillion(pricing.OurOutputPerMTok));
        }
        if (model.Media is { } media) WriteMediaPricing(writer, model.Kind, media);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>The units a non-token kind is sold in, our prices as strings of USD, and <c>units</c> in words as the pricing page shows them.</summary>
    private static void WriteMediaPricing(Utf8JsonWriter writer, string kind, MediaPricing media)
    {
        switch (kind)
        {
            case ModelKinds.Image:
                writer.WriteStartArray("images");
                foreach (var image in media.ImagePrices)
                {
                    writer.WriteStartObject();
                    writer.WriteString("size", image.Size);
                    writer.WriteString("quality", image.Quality);
                    writer.WriteString("per_image", PerMillion(media.Ours(image.Micros)));
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                break;
            case ModelKinds.Speech:
                writer.WriteString("per_million_characters", PerMillion(media.Ours(media.MicrosPerMChar ?? 0)));
                break;
            case ModelKinds.Transcription:
                writer.WriteString("per_minute", PerMillion(media.Ours(media.MicrosPerMinute ?? 0)));
                break;
            case ModelKinds.Moderation:
                writer.WriteString("per_request", PerMillion(media.Ours(media.MicrosPerRequest ?? 0)));
                break;
            case ModelKinds.Realtime:
                writer.WriteString("audio_prompt_per_million", PerMillion(media.Ours(media.AudioInputPerMTok ?? 0)));
                writer.WriteString("audio_completion_per_million", PerMillion(media.Ours(media.AudioOutputPerMTok ?? 0)));
                break;
            default:
                return;
        }
        writer.WriteStartArray("units");
        foreach (var unit in media.Units(kind)) writer.WriteStringValue(unit);
        writer.WriteEndArray();
    }

    /// <summary>USD per token: micro-USD per million tokens / 10^12, printed exactly.</summary>
    private static string PerToken(long microsPerMTok) => (microsPerMTok / 1_000_000_000_000m).ToString(CultureInfo.InvariantCulture);
    private static string PerMillion(long microsPerMTok) => (microsPerMTok / 1_000_000m).ToString(CultureInfo.InvariantCulture);
}
