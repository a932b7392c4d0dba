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
    public static async ValueTask<(JsonObject Json, int Bytes)?> ReadObjectAsync(HttpContext context, long maxBytes)
    {
        if (await ReadBytesAsync(context, maxBytes) is not var (buffer, length)) return null;
        try
        {
            if (await ParseAsync(context, buffer.AsMemory(0, length), static bytes => JsonNode.Parse(bytes.Span, documentOptions: DocumentOptions)) is not { } node) return null;
            if (node is JsonObject body) return (body, length);
            await NotAnObjectAsync(context);
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The body as a read-only <see cref="JsonDocument"/> over the pooled bytes it was read into, by the same checks
    /// as <see cref="ReadObjectAsync"/>: the hot path validates and forwards without building a DOM. The document and
    /// its buffer belong to the request: they go back when the response has finished.
    /// </summary>
    public static async ValueTask<RequestJson?> ReadDocumentAsync(HttpContext context, long maxBytes)
    {
        if (await ReadBytesAsync(context, maxBytes) is not var (buffer, length)) return null;
        var bytes = buffer.AsMemory(0, length);
        var document = await ParseAsync(context, bytes, static b => JsonDocument.Parse(b, DocumentOptions));
        if (document is null || document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document?.Dispose();
            ArrayPool<byte>.Shared.Return(buffer);
            if (document is not null) await NotAnObjectAsync(context);
            return null;
        }
        var json = new RequestJson(document, buffer, length);
        context.Response.RegisterForDispose(json);
        return json;
    }

    /// <summary>The body's bytes in a pooled buffer (the caller returns it), checked for size and Unicode; null after writing the error.</summary>
    private static async ValueTask<(byte[] Buffer, int Length)?> ReadBytesAsync(HttpContext context, long maxBytes)
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

        var buffer = ArrayPool<byte>.Shared.Rent(request.ContentLength is > 0 and < 1 << 20 ? (int)request.ContentLength + 1 : 4 * 1024);
        var length = 0;
        var kept = false;
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
            kept = true;
            return (buffer, length);
        }
        finally
        {
            if (!kept) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Parses the bytes; null after writing OpenAI's error for malformed JSON (and duplicate keys).</summary>
    private static async ValueTask<T?> ParseAsync<T>(HttpContext context, ReadOnlyMemory<byte> bytes, Func<ReadOnlyMemory<byte>, T?> parse) where T : class
    {
        try
        {
            return parse(bytes);
        }
        catch (JsonException ex)
        {
            await ApiErrors.InvalidRequestAsync(context,
                $"We could not parse the JSON body of your request ({ApiErrors.Truncate(ex.Message, 200)}). " +
                "The OpenAI API expects a JSON payload.");
            return null;
        }
    }

    private static Task NotAnObjectAsync(HttpContext context) => ApiErrors.InvalidRequestAsync(context, "The request body must be a JSON object.");

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
    public static string? RequiredString(JsonObject body, string name, out string? error) => RequiredString(Field(body, name), name, out error);

    public static string? RequiredString(JsonElement body, string name, out string? error) => RequiredString(Field(body, name), name, out error);

    /// <summary>An optional integer within bounds; false (with a message) when present and wrong.</summary>
    public static bool OptionalInt(JsonObject body, string name, long min, long max, out long? value, out string? error) =>
        OptionalInt(Field(body, name), name, min, max, out value, out error);

    public static bool OptionalInt(JsonElement body, string name, long min, long max, out long? value, out string? error) =>
        OptionalInt(Field(body, name), name, min, max, out value, out error);

    public static bool OptionalNumber(JsonObject body, string name, double min, double max, out string? error) =>
        OptionalNumber(Field(body, name), name, min, max, out error);

    public static bool OptionalNumber(JsonElement body, string name, double min, double max, out string? error) =>
        OptionalNumber(Field(body, name), name, min, max, out error);

    public static bool OptionalBool(JsonObject body, string name, out bool value, out string? error) =>
        OptionalBool(Field(body, name), name, out value, out error);

    public static bool OptionalBool(JsonElement body, string name, out bool value, out string? error) =>
        OptionalBool(Field(body, name), name, out value, out error);

    /// <summary>A field of a parsed object as an element (no copy: parsed values are elements); null when absent.</summary>
    private static JsonElement? Field(JsonObject body, string name) => body[name] switch
    {
        null => null,
        JsonValue value when value.TryGetValue<JsonElement>(out var element) => element,
        var node => JsonSerializer.SerializeToElement(node),
    };

    /// <summary>A field of the root element; null when absent or JSON null, as <c>JsonObject</c>'s indexer answers.</summary>
    public static JsonElement? Field(JsonElement body, string name) =>
        body.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static string? RequiredString(JsonElement? field, string name, out string? error)
    {
        error = null;
        if (field is { ValueKind: JsonValueKind.String } s && s.GetString() is { Length: > 0 } text) return text;
        error = field is null ? $"Missing required parameter: '{name}'." : $"Invalid type for '{name}': expected a non-empty string.";
        return null;
    }

    private static bool OptionalInt(JsonElement? field, string name, long min, long max, out long? value, out string? error)
    {
        value = null;
        error = null;
        if (field is not { ValueKind: not JsonValueKind.Null } f) return true;
        if (f.ValueKind != JsonValueKind.Number || !f.TryGetInt64(out var l))
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

    private static bool OptionalNumber(JsonElement? field, string name, double min, double max, out string? error)
    {
        error = null;
        if (field is not { ValueKind: not JsonValueKind.Null } f) return true;
        if (f.ValueKind != JsonValueKind.Number)
        {
            error = $"Invalid type for '{name}': expected a number.";
            return false;
        }
        var d = f.GetDouble();
        if (d < min || d > max)
        {
            error = $"Invalid '{name}': {d} is out of range; expected a value from {min} to {max}.";
            return false;
        }
        return true;
    }

    private static bool OptionalBool(JsonElement? field, string name, out bool value, out string? error)
    {
        value = false;
        error = null;
        if (field is not { ValueKind: not JsonValueKind.Null } f) return true;
        switch (f.ValueKind)
        {
            case JsonValueKind.True: value = true; return true;
            case JsonValueKind.False: return true;
            default:
                error = $"Invalid type for '{name}': expected a boolean.";
                return false;
        }
    }
}

/// <summary>
/// A request body read as a <see cref="JsonDocument"/> over a pooled buffer: the root element for validation, the raw
/// bytes for forwarding. Disposed when the response has finished (<see cref="RequestBody.ReadDocumentAsync"/>).
/// </summary>
public sealed class RequestJson(JsonDocument document, byte[] buffer, int length) : IDisposable
{
    private byte[]? _buffer = buffer;

    public JsonElement Root => document.RootElement;
    public ReadOnlyMemory<byte> Bytes => (_buffer ?? throw new ObjectDisposedException(nameof(RequestJson))).AsMemory(0, length);
    public int Length => length;

    public void Dispose()
    {
        if (_buffer is null) return;
        document.Dispose();
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
    }
}
