using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AiGate.Web.Features.Models;

/// <summary>
/// Real token counts where our own count decides money: the prompt estimate a reservation holds, and
/// the output of a stream the provider never reported in full. OpenAI's tokenizers are exact for
/// OpenAI's models (o200k_base for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1/o3/o4, gpt-oss; cl100k_base for
/// gpt-4 and gpt-3.5). Every other model (Claude, Gemini, Llama, Mistral…) is counted with cl100k_base
/// as an approximation: their tokenizers are not published for .NET, and a modern BPE count follows
/// their counts far better than bytes / 4 does for code, numbers and non-Latin text (bytes / 4 is
/// 4× under for CJK). Approximate counts are flagged, and the provider's own count, when it arrives,
/// stays the bill. bytes / 4 remains only as the fallback when a tokenizer's data cannot be loaded.
/// Encodings load once (≈ 0.3 s for o200k) and are thread-safe singletons, held compactly (<see cref="BpeEncoding"/>).
/// </summary>
public static class TokenCounter
{
    private static readonly Lazy<BpeEncoding?> O200k = new(() => Load(BpeEncoding.O200kBase));
    private static readonly Lazy<BpeEncoding?> Cl100k = new(() => Load(BpeEncoding.Cl100kBase));

    private static readonly string[] O200kPrefixes = ["gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss", "o1", "o3", "o4", "codex"];
    private static readonly string[] Cl100kPrefixes = ["gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada"];

    /// <summary>The counter for a model: by its public name, else by its first route's upstream name.</summary>
    public static ModelTokenizer For(ResolvedModel model)
    {
        if (Family(model.Id) is { } family) return family;
        var routes = model.Routes;
        for (var i = 0; i < routes.Count; i++)   // indexed: foreach over the interface would box an enumerator per call
            if (Family(routes[i].UpstreamModel) is { } byRoute) return byRoute;
        return new ModelTokenizer(Cl100k.Value, Exact: false);
    }

    /// <summary>The exact OpenAI encoding for an OpenAI model name (with or without a <c>provider/</c> prefix), else null.</summary>
    internal static ModelTokenizer? Family(string name)
    {
        var slash = name.LastIndexOf('/');
        var bare = slash < 0 ? name.AsSpan() : name.AsSpan(slash + 1);
        foreach (var prefix in O200kPrefixes)
            if (bare.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return new ModelTokenizer(O200k.Value, Exact: true);
        foreach (var prefix in Cl100kPrefixes)
            if (bare.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return new ModelTokenizer(Cl100k.Value, Exact: true);
        return null;
    }

    /// <summary>Loads both encodings now, so the first request does not pay for it.</summary>
    public static void Warm()
    {
        _ = O200k.Value;
        _ = Cl100k.Value;
    }

    private static BpeEncoding? Load(Func<BpeEncoding> load)
    {
        try
        {
            return load();
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or BadImageFormatException or FormatException)
        {
            return null;   // the data package is missing: bytes / 4 stands in (ModelTokenizer.Count)
        }
    }
}

/// <summary>One model's way of counting tokens. <see cref="Exact"/>: the model's own tokenizer, not an approximation.</summary>
public readonly record struct ModelTokenizer(BpeEncoding? Tokenizer, bool Exact)
{
    /// <summary>Tokens of <paramref name="text"/>; bytes / 4 (rounded up) when no tokenizer is loaded.</summary>
    public long Count(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty) return 0;
        if (Tokenizer is { } tokenizer) return tokenizer.CountTokens(text);
        return (System.Text.Encoding.UTF8.GetByteCount(text) + 3) / 4;
    }

    /// <summary>
    /// The prompt tokens of an OpenAI-shaped chat request as we count them: every text the provider
    /// turns into input tokens (message text, names, tool calls and results, tool definitions, the
    /// response schema) plus OpenAI's framing (4 tokens a message, 3 to prime the reply). Image parts
    /// are not counted here (they are reserved separately). For a stream that breaks before the
    /// provider reports usage, this is the prompt we bill (flagged estimated).
    /// </summary>
    public long CountPrompt(JsonObject body) => CountPrompt(JsonSerializer.SerializeToElement(body));

    /// <inheritdoc cref="CountPrompt(JsonObject)"/>
    public long CountPrompt(JsonElement body)
    {
        long tokens = 3;
        if (Field(body, "messages"u8) is { ValueKind: JsonValueKind.Array } messages)
            foreach (var message in messages.EnumerateArray())
            {
                if (message.ValueKind != JsonValueKind.Object) continue;
                tokens += 4 + Count(Field(message, "name"u8)) + Count(Field(message, "tool_call_id"u8));
                tokens += Field(message, "content"u8) is { ValueKind: JsonValueKind.Array } parts ? CountTextParts(parts) : Count(Field(message, "content"u8));
                if (Field(message, "tool_calls"u8) is { ValueKind: JsonValueKind.Array } calls)
                    foreach (var call in calls.EnumerateArray())
                    {
                        tokens += 4;
                        if (Field(call, "function"u8) is { ValueKind: JsonValueKind.Object } function)
                            tokens += Count(Field(function, "name"u8)) + Count(Field(function, "arguments"u8));
                    }
            }
        if (Field(body, "tools"u8) is { ValueKind: JsonValueKind.Array } tools) tokens += CountJson(tools);
        if (Field(body, "functions"u8) is { ValueKind: JsonValueKind.Array } functions) tokens += CountJson(functions);
        if (Field(body, "response_format"u8) is { ValueKind: JsonValueKind.Object } format) tokens += CountJson(format);
        return tokens;
    }

    /// <summary>
    /// What a reservation holds for a prompt we counted at <paramref name="counted"/>: an upper bound of
    /// the provider's count. Exact tokenizers get a 10 % margin (framing of tools and names varies);
    /// approximations 50 %, since Claude's tokenizer counts up to ~35 % more than cl100k on English and
    /// more on code; without a tokenizer, bytes / 4 is no bound at all, so bytes are doubled.
    /// </summary>
    public long PromptUpperBound(long counted) => Tokenizer is null ? counted * 2 : Exact ? counted + counted / 10 + 1 : counted + counted / 2 + 1;

    private long CountTextParts(JsonElement parts)
    {
        long tokens = 0;
        foreach (var part in parts.EnumerateArray())
            if (Field(part, "text"u8) is { ValueKind: not (JsonValueKind.Object or JsonValueKind.Array) } text) tokens += 1 + Count(text);
        return tokens;
    }

    private static JsonElement? Field(JsonElement element, ReadOnlySpan<byte> name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    /// <summary>Tokens of a JSON string; unescaped text is decoded into a pooled buffer, no string made.</summary>
    private long Count(JsonElement? element)
    {
        if (element is not { ValueKind: JsonValueKind.String } value) return 0;
        var raw = JsonMarshal.GetRawUtf8Value(value);
        raw = raw[1..^1];   // the quotes
        if (raw.IndexOf((byte)'\\') >= 0) return Count(value.GetString());
        var chars = ArrayPool<char>.Shared.Rent(raw.Length);
        try
        {
            return Count(chars.AsSpan(0, Encoding.UTF8.GetChars(raw, chars)));
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    /// <summary>A JSON value's tokens as compact JSON (the form tools and schemas reach the model in).</summary>
    private long CountJson(JsonElement element)
    {
        var output = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(output)) element.WriteTo(writer);
        return Count(Encoding.UTF8.GetString(output.WrittenSpan));
    }
}
