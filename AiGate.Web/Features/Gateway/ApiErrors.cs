using System.Text.Json;
using Microsoft.Net.Http.Headers;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// Every /api/v1 error, in OpenAI's envelope: <c>{"error":{"message","type","param","code"}}</c>, with
/// the status codes of DESIGN.md. One helper, so every path answers the same way.
/// </summary>
public static class ApiErrors
{
    /// <summary>The one 401 body, byte for byte the same for unknown, malformed, revoked and expired keys (RELIABILITY K7).</summary>
    public static Task InvalidApiKeyAsync(HttpContext context) => WriteAsync(context, StatusCodes.Status401Unauthorized,
        "Incorrect API key provided. Create or look up your keys in the AiGate dashboard.", "invalid_request_error", "invalid_api_key");

    /// <summary>A valid key of an account an operator suspended: 403, and where to see why (the reason is on the user's pages, not in API logs).</summary>
    public static Task AccountSuspendedAsync(HttpContext context) => WriteAsync(context, StatusCodes.Status403Forbidden,
        "This account is suspended, so its API keys are refused. Sign in to the AiGate dashboard to see why, or contact support.",
        "permission_error", "account_suspended");

    public static Task InvalidRequestAsync(HttpContext context, string message, string? param = null, string? code = null) =>
        WriteAsync(context, StatusCodes.Status400BadRequest, message, "invalid_request_error", code, param);

    public static Task ModelNotFoundAsync(HttpContext context, string model) => WriteAsync(context, StatusCodes.Status404NotFound,
        $"The model `{Truncate(model, 128)}` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found", "model");

    public static async Task WriteAsync(HttpContext context, int status, string message, string type, string? code = null,
        string? param = null, TimeSpan? retryAfter = null)
    {
        var response = context.Response;
        if (response.HasStarted) return;
        response.StatusCode = status;
        response.ContentType = "application/json";
        if (retryAfter is { } wait) response.Headers[HeaderNames.RetryAfter] = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using (var writer = new Utf8JsonWriter(response.BodyWriter))
            WriteEnvelope(writer, message, type, code, param);
        await response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    public static void WriteEnvelope(Utf8JsonWriter writer, string message, string type, string? code, string? param)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", message);
        writer.WriteString("type", type);
        if (param is null) writer.WriteNull("param"); else writer.WriteString("param", param);
        if (code is null) writer.WriteNull("code"); else writer.WriteString("code", code);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    internal static string Truncate(string value, int max) => value.Length <= max ? value : value[..max] + "…";
}
