using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Features;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// Reads a request body as one JSON object, under a size cap and a nesting limit, and checks
/// fields the way OpenAI does, naming the field in the error. Returns null after writing the error.
/// </summary>
public static class RequestBody
{
    // Duplicate keys are refused (400) rather than left to JsonObject, which throws on first access.
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64, AllowDuplicateProperties = false };

    /// <summary>The body as a JSON object and its size in bytes (the size feeds the worst-case cost estimate).</summary>
    public static async Task<(JsonObject Json, int Bytes)?> ReadObjectAsync(HttpContext context, long maxBytes)
    {
        var request = context.Request;
        if (request.ContentType is { } type && !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            await ApiErrors.InvalidRequestAsync(context, "The request body must be JSON (Content-Type: application/json).");
            return null;
        }
        if (request.ContentLength > maxBytes)
        {
            await TooLargeAsync(context, maxBytes);
            return null;
        }
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = maxBytes;

        // Read into a pooled buffer (a body is parsed into its own objects, then the buffer goes back).
        var buffer = ArrayPool<byte>.Shared.Rent(request.ContentLength is > 0 and < 1 << 20 ? (int)request.ContentLength + 1 : 4 * 1024);
        var length = 0;
        try
        {
            try
            {
                while (true)
                {
                    if (length == buffer.Length)
                    {
                        var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, length).CopyTo(larger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = larger;
                    }
                    var read = await request.Body.ReadAsync(buffer.AsMemory(length), context.RequestAborted);
                    if (read == 0) break;
                    length += read;
                    if (length > maxBytes)
                    {
                        await TooLargeAsync(context, maxBytes);
                        return null;
                    }
                }
            }
            catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                await TooLargeAsync(context, maxBytes);
                return null;
            }

            var bytes = buffer.AsSpan(0, length);
            if (length == 0)
            {
                await ApiErrors.InvalidRequestAsync(context, "The request body is empty; send a JSON object.");
                return null;
            }
            if (!System.Text.Unicode.Utf8.IsValid(bytes) || HasUnreadableString(bytes))
            {
                await ApiErrors.InvalidRequestAsync(context,
                    "The JSON body contains a string that is not valid Unicode (a lone UTF-16 surrogate escape or invalid UTF-8).");
                return null;
            }
            try
            {
                if (JsonNode.Parse(bytes, documentOptions: DocumentOptions) is JsonObject body) return (body, length);
                await ApiErrors.InvalidRequestAsync(context, "The request body must be a JSON object.");
                return null;
            }
            catch (JsonException ex)
            {
                await ApiErrors.InvalidRequestAsync(context,
                    $"We could not parse the JSON body of your request ({ApiErrors.Truncate(ex.Message, 200)}). " +
                    "The OpenAI API expects a JSON payload.");
                return null;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// True when a string or property name cannot become a .NET string and back: a lone surrogate escape
    /// (<c>"\ud800"</c>) is valid JSON, but reading it as a string, or writing it upstream or into an error
    /// message, throws. Only escaped strings can hide one (raw bytes are checked as UTF-8 first, in one
    /// vectorised pass), so unescaped text costs no decoding. Malformed JSON is left to the parser, which says
    /// where it broke.
    /// </summary>
    private static bool HasUnreadableString(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = DocumentOptions.MaxDepth });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped) _ = reader.GetString();
            }
        }
        catch (InvalidOperationException)
        {
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
        return false;
    }

    private static Task TooLargeAsync(HttpContext context, long maxBytes) => ApiErrors.WriteAsync(context,
        StatusCodes.Status413PayloadTooLarge, $"The request body is larger than this endpoint's limit of {(maxBytes >= 1024 * 1024 ? $"{maxBytes / (1024 * 1024)} MB" : $"{maxBytes / 1024} KB")}.",
        "invalid_request_error", "request_too_large");

    /// <summary>A required non-empty string field; its value, or null when it is missing or of the wrong type.</summary>
    public static string? RequiredString(JsonObject body, string name, out string? error)
    {
        error = null;
        var node = body[name];
        if (node is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0) return s;
        error = node is null ? $"Missing required parameter: '{name}'." : $"Invalid type for '{name}': expected a non-empty string.";
        return null;
    }

    /// <summary>An optional integer within bounds; false (with a message) when present and wrong.</summary>
    public static bool OptionalInt(JsonObject body, string name, long min, long max, out long? value, out string? error)
    {
        value = null;
        error = null;
        var node = body[name];
        if (node is null || node.GetValueKind() == JsonValueKind.Null) return true;
        if (node.GetValueKind() != JsonValueKind.Number || !((JsonValue)node).TryGetValue<long>(out var l))
        {
            error = $"Invalid type for '{name}': expected an integer.";
            return false;
        }
        if (l < min || l > max)
        {
            error = $"Invalid '{name}': {l} is out of range; expected a value from {min} to {max}.";
            return false;
        }
        value = l;
        return true;
    }

    public static bool OptionalNumber(JsonObject body, string name, double min, double max, out string? error)
    {
        error = null;
        var node = body[name];
        if (node is null || node.GetValueKind() == JsonValueKind.Null) return true;
        if (node.GetValueKind() != JsonValueKind.Number)
        {
            error = $"Invalid type for '{name}': expected a number.";
            return false;
        }
        var d = node.GetValue<double>();
        if (d < min || d > max)
        {
            error = $"Invalid '{name}': {d} is out of range; expected a value from {min} to {max}.";
            return false;
        }
        return true;
    }

    public static bool OptionalBool(JsonObject body, string name, out bool value, out string? error)
    {
        value = false;
        error = null;
        var node = body[name];
        if (node is null || node.GetValueKind() == JsonValueKind.Null) return true;
        switch (node.GetValueKind())
        {
            case JsonValueKind.True: value = true; return true;
            case JsonValueKind.False: return true;
            default:
                error = $"Invalid type for '{name}': expected a boolean.";
                return false;
        }
    }
}
