using System.Text.Json;
using Microsoft.Net.Http.Headers;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// Every /api/v1 error, in OpenAI's envelope: <c>{"error":{"message","type","param","code"}}</c>, with
/// the status codes of DESIGN.md. One helper, so every path answers the same way. A request marked with
/// <see cref="UseAnthropicEnvelope"/> (<c>/api/v1/messages</c>) gets the same status in Anthropic's envelope
/// instead, from every shared step (rate limits, metering, body limits, routing) without their knowing.
/// </summary>
public static class ApiErrors
{
    private static readonly object AnthropicMark = new();

    /// <summary>From here on, this request's errors use Anthropic's envelope <c>{"type":"error","error":{"type","message"}}</c>.</summary>
    public static void UseAnthropicEnvelope(HttpContext context) => context.Items[AnthropicMark] = AnthropicMark;

    public static bool UsesAnthropicEnvelope(HttpContext context) => context.Items.ContainsKey(AnthropicMark);

    /// <summary>
    /// Anthropic's error type for a status (its "HTTP errors" page). Ours that Anthropic lacks: 402 (insufficient
    /// credit, budget stop, key limit) is <c>billing_error</c>, the type Anthropic itself answers 402 with; 503 (no
    /// provider answering, billing or the instance unavailable; retry later) is <c>overloaded_error</c>; 502 is <c>api_error</c>.
    /// </summary>
    public static string AnthropicType(int status) => status switch
    {
        StatusCodes.Status401Unauthorized => "authentication_error",
        StatusCodes.Status402PaymentRequired => "billing_error",
        StatusCodes.Status403Forbidden => "permission_error",
        StatusCodes.Status404NotFound => "not_found_error",
        StatusCodes.Status413PayloadTooLarge => "request_too_large",
        StatusCodes.Status429TooManyRequests => "rate_limit_error",
        StatusCodes.Status503ServiceUnavailable or 529 => "overloaded_error",
        StatusCodes.Status504GatewayTimeout => "timeout_error",
        >= 400 and < 500 => "invalid_request_error",
        _ => "api_error",
    };

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
        // Kept for the call's usage row (the request log's detail says why a call failed).
        context.Items[CallErrorKey] = new CallError(Truncate(code ?? type, 63), Truncate(message, CallError.MaxMessage - 1));
        response.StatusCode = status;
        response.ContentType = "application/json";
        if (retryAfter is { } wait) response.Headers[HeaderNames.RetryAfter] = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using (var writer = new Utf8JsonWriter(response.BodyWriter))
        {
            if (UsesAnthropicEnvelope(context)) WriteAnthropicEnvelope(writer, AnthropicType(status), message, context.TraceIdentifier);
            else WriteEnvelope(writer, message, type, code, param);
        }
        await response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    /// <summary><c>{"type":"error","error":{"type","message"},"request_id"}</c>: Anthropic's error body, and the data of its <c>event: error</c>.</summary>
    public static void WriteAnthropicEnvelope(Utf8JsonWriter writer, string type, string message, string? requestId)
    {
        writer.WriteStartObject();
        writer.WriteString("type", "error");
        writer.WriteStartObject("error");
        writer.WriteString("type", type);
        writer.WriteString("message", message);
        writer.WriteEndObject();
        if (requestId is not null) writer.WriteString("request_id", requestId);
        writer.WriteEndObject();
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

    private static readonly object CallErrorKey = new();

    /// <summary>The error this request was answered with, if any (set by <see cref="WriteAsync"/>).</summary>
    public static CallError? ErrorOf(HttpContext context) => context.Items.TryGetValue(CallErrorKey, out var error) ? error as CallError : null;

    /// <summary>The parameter a validation message names first (<c>'max_tokens'</c> in "Invalid 'max_tokens': …"), for the envelope's <c>param</c>.</summary>
    public static string? ParamOf(string error)
    {
        var start = error.IndexOf('\'');
        var end = start < 0 ? -1 : error.IndexOf('\'', start + 1);
        return end > start ? error[(start + 1)..end] : null;
    }
}

/// <summary>What a failed call was answered: the envelope's code (its type when it has none) and message.</summary>
public sealed record CallError(string Code, string Message)
{
    /// <summary>The usage row's column width; longer messages are cut (with an ellipsis) to fit.</summary>
    public const int MaxMessage = 300;
}
