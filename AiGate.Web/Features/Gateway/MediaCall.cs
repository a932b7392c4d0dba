using System.Text.Json.Nodes;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// What the media endpoints (images, moderations) share: the model looked up by kind with its errors in OpenAI's
/// envelope, and the request built for OpenAI-format routes (OpenAI and the echo provider; other providers do not
/// speak these APIs, so their routes are skipped).
/// </summary>
public static class MediaCall
{
    /// <summary>The model, or null once the error (404, 403, 400 wrong kind, 503 unpriced or unrouted) is written.</summary>
    public static async Task<ResolvedModel?> ResolveAsync(HttpContext context, ModelCatalog catalog, KeyIdentity key, string modelName, string kind, string endpoint)
    {
        var model = await catalog.FindAsync(modelName, context.RequestAborted);
        if (model is null)
        {
            await ApiErrors.ModelNotFoundAsync(context, modelName);
            return null;
        }
        if (key.AllowedModels.Count > 0 && !key.AllowedModels.Contains(model.Id))
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status403Forbidden, $"This API key may not use the model `{model.Id}`.",
                "invalid_request_error", "model_not_allowed", "model");
            return null;
        }
        if (model.Kind != kind)
        {
            await ApiErrors.InvalidRequestAsync(context, $"`{model.Id}` is a {model.Kind} model; {endpoint} takes {kind} models.", "model");
            return null;
        }
        if (!model.IsServable || model.Media is null)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, $"`{model.Id}` is temporarily unavailable.",
                "server_error", "model_unavailable", "model");
            return null;
        }
        return model;
    }

    /// <summary>A JSON POST to <paramref name="path"/> on an OpenAI-format provider, with the upstream's model name; null for other kinds.</summary>
    public static HttpRequestMessage? OpenAiJson(Provider provider, string path, JsonObject body, string upstreamModel, string? apiKey)
    {
        if (provider.Kind is not (ProviderKind.OpenAi or ProviderKind.Echo)) return null;
        var copy = body.DeepClone().AsObject();   // each attempt sends its own route's model name
        copy["model"] = upstreamModel;
        return OpenAiAdapter.Post(provider, path, copy, stream: false, apiKey);
    }

    /// <summary>An optional string among <paramref name="allowed"/> (null when absent), or the 400 written and false.</summary>
    public static async Task<(bool Ok, string? Value)> OptionalChoiceAsync(HttpContext context, JsonObject body, string name, params string[] allowed)
    {
        if (body[name] is null) return (true, null);
        if (body[name] is JsonValue v && v.TryGetValue<string>(out var s) && (allowed.Length == 0 || allowed.Contains(s))) return (true, s);
        await ApiErrors.InvalidRequestAsync(context, allowed.Length == 0
            ? $"Invalid '{name}': expected a string."
            : $"Invalid '{name}': expected one of {string.Join(", ", allowed.Select(a => $"'{a}'"))}.", name);
        return (false, null);
    }
}
