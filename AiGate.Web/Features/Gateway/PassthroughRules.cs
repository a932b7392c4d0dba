using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Features.Gateway;

/// <summary>One allow-listed pass-through endpoint: where it goes under the provider's base URL and how its call is priced.</summary>
/// <param name="RelativePath">The path under the provider's base URL, rebuilt from checked segments (never the client's raw text).</param>
/// <param name="ModelFromPath">The model named in the path (Gemini's <c>models/{model}:generateContent</c>); null when the body names it.</param>
/// <param name="AllowsStream">Whether <c>stream: true</c> is relayed (and billed from the stream's usage) rather than refused.</param>
/// <param name="Embeddings">An embeddings call: no output tokens.</param>
public sealed record PassthroughRoute(string RelativePath, string? ModelFromPath, bool AllowsStream, bool Embeddings);

/// <summary>
/// What the pass-through forwards (docs/api.md, "Provider pass-through"): only endpoints whose cost the
/// provider reports in usage fields we can read, for a model of our catalogue. Everything else (files,
/// batches, fine-tuning, any endpoint not listed) is refused before upstream, since it could not be
/// billed (DESIGN rule 3: nothing is served for free).
/// </summary>
public static class PassthroughRules
{
    /// <summary>
    /// The allow-listed POST endpoints per provider kind, as paths under the provider's configured base
    /// URL (OpenAI's includes <c>/v1</c>, Anthropic's and Gemini's do not).
    /// </summary>
    public static string Describe(ProviderKind kind) => kind switch
    {
        ProviderKind.OpenAi => "POST chat/completions, POST responses, POST embeddings",
        ProviderKind.Anthropic => "POST v1/messages",
        ProviderKind.Gemini => "POST v1beta/models/{model}:generateContent",
        _ => "none",
    };

    /// <summary>The allow-listed endpoint <paramref name="segments"/> names, or null.</summary>
    public static PassthroughRoute? Match(ProviderKind kind, string method, string[] segments)
    {
        if (!HttpMethods.IsPost(method)) return null;
        switch (kind)
        {
            case ProviderKind.OpenAi when segments is ["chat", "completions"]:
                return new PassthroughRoute("chat/completions", null, AllowsStream: true, Embeddings: false);
            case ProviderKind.OpenAi when segments is ["responses"]:
                return new PassthroughRoute("responses", null, AllowsStream: false, Embeddings: false);
            case ProviderKind.OpenAi when segments is ["embeddings"]:
                return new PassthroughRoute("embeddings", null, AllowsStream: false, Embeddings: true);
            case ProviderKind.Anthropic when segments is ["v1", "messages"]:
                return new PassthroughRoute("v1/messages", null, AllowsStream: false, Embeddings: false);
            case ProviderKind.Gemini when segments is ["v1beta" or "v1", "models", var call] && call.EndsWith(":generateContent", StringComparison.Ordinal):
                var model = call[..^":generateContent".Length];
                return IsModelName(model) ? new PassthroughRoute($"{segments[0]}/models/{model}:generateContent", model, AllowsStream: false, Embeddings: false) : null;
            default:
                return null;
        }
    }

    /// <summary>
    /// False when an OpenAI-shaped body has none of the top-level fields <see cref="Unpriceable"/> reads for an OpenAI-kind
    /// route (<c>service_tier</c>, <c>background</c>, <c>web_search_options</c>, <c>tools</c>): the chat endpoint then needs no
    /// nodes to know the call is priceable. Keep it beside the rules it stands for.
    /// </summary>
    internal static bool OpenAiRulesApply(JsonElement body) =>
        body.TryGetProperty("service_tier"u8, out _) || body.TryGetProperty("background"u8, out _)
        || body.TryGetProperty("web_search_options"u8, out _) || body.TryGetProperty("tools"u8, out _);

    /// <summary>
    /// Why this body cannot be priced from its usage, or null when it can. Some features cost money that no
    /// usage field reports: server-side tools priced per call (OpenAI's web and file search, code interpreter
    /// containers, image generation, remote MCP; Anthropic's web search, web fetch and code execution; Gemini's
    /// Search and Maps grounding), OpenAI's background responses, whose generation (and usage) happens after
    /// this call has been settled, and tiers priced above the catalogue's rates (OpenAI's priority tier,
    /// Anthropic's 1M-token context beta and one-hour cache writes).
    /// </summary>
    public static string? Unpriceable(ProviderKind kind, PassthroughRoute route, JsonObject body, string? anthropicBeta, string where = "through the pass-through")
    {
        if (kind == ProviderKind.OpenAi && body["service_tier"] is JsonValue tier && tier.TryGetValue<string>(out var t0) && t0 == "priority")
            return $"'service_tier': 'priority' is not available {where}: it is priced above the catalogue's rates.";
        if (kind == ProviderKind.Anthropic && anthropicBeta?.Contains("context-1m", StringComparison.OrdinalIgnoreCase) == true)
            return $"The 1M-token context beta is not available {where}: prompts over 200K tokens are priced above the catalogue's rates.";
        if (route.Embeddings) return null;
        if (kind == ProviderKind.OpenAi && body["background"] is JsonValue background && background.GetValueKind() == JsonValueKind.True)
            return $"Background responses are not available {where}: they are generated, and billed upstream, after the call ends.";
        if (kind == ProviderKind.OpenAi && body["web_search_options"] is not null)
            return $"'web_search_options' is not available {where}: its searches are priced per call, outside the usage AiGate bills from.";
        if (kind == ProviderKind.Anthropic && body["mcp_servers"] is not null)
            return $"'mcp_servers' is not available {where}: remote tools are priced outside the usage AiGate bills from.";
        if (kind == ProviderKind.Anthropic && HasOneHourCacheWrite(body))
            return $"\"cache_control\" with \"ttl\": \"1h\" is not available {where}: one-hour cache writes are priced at twice the input rate, "
                + "above the catalogue's rates. The default five-minute cache is.";
        if (body["tools"] is not JsonArray tools) return null;
        foreach (var tool in tools)
        {
            if (tool is not JsonObject t) continue;
            var type = t["type"] is JsonValue v && v.TryGetValue<string>(out var name) ? name : null;
            var priced = kind switch
            {
                // Functions and custom tools run on the client; every other Responses tool runs (and is priced) at OpenAI.
                ProviderKind.OpenAi => type is null or "function" or "custom",
                // Client tools (custom, and the Anthropic-defined bash, editor and computer tools) are billed as tokens.
                ProviderKind.Anthropic => type is null || !(type.StartsWith("web_search", StringComparison.Ordinal)
                    || type.StartsWith("web_fetch", StringComparison.Ordinal) || type.StartsWith("code_execution", StringComparison.Ordinal)
                    || type.StartsWith("mcp", StringComparison.Ordinal)),
                ProviderKind.Gemini => t["googleSearch"] is null && t["googleSearchRetrieval"] is null && t["googleMaps"] is null
                    && t["google_search"] is null && t["google_search_retrieval"] is null && t["google_maps"] is null,
                _ => false,
            };
            if (!priced)
                return $"The tool {(type is null ? "" : $"`{type}` ")}is not available {where}: it is priced per call, outside the usage AiGate bills from. Function tools are.";
        }
        return null;
    }

    /// <summary>
    /// True when any <c>cache_control</c> in the body (system blocks, message content blocks, tools) asks for
    /// Anthropic's one-hour TTL: its cache writes cost 2× the input price, which the usage we bill from does not tell
    /// apart from five-minute writes (1.25×, within the margin).
    /// </summary>
    private static bool HasOneHourCacheWrite(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (name, value) in o)
                {
                    if (name == "cache_control" && value is JsonObject control && control["ttl"] is JsonValue ttl
                        && ttl.TryGetValue<string>(out var t) && t != "5m")
                        return true;
                    if (value is JsonObject or JsonArray && HasOneHourCacheWrite(value)) return true;
                }
                return false;
            case JsonArray a:
                foreach (var item in a)
                    if (item is JsonObject or JsonArray && HasOneHourCacheWrite(item)) return true;
                return false;
            default:
                return false;
        }
    }

    /// <summary>A Gemini model id as the path carries it: letters, digits, '.', '-', '_' (no dot segments, no separators).</summary>
    private static bool IsModelName(string model)
    {
        if (model.Length is 0 or > 128 || model is "." or "..") return false;
        foreach (var c in model)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_')) return false;
        return true;
    }

    /// <summary>
    /// The most output the call may write, as its body limits it (OpenAI's <c>max_tokens</c> /
    /// <c>max_completion_tokens</c> / <c>max_output_tokens</c> times <c>n</c>, Anthropic's <c>max_tokens</c>,
    /// Gemini's <c>generationConfig.maxOutputTokens</c> times <c>candidateCount</c>); the model's maximum when
    /// the body sets none. A limit above the model's maximum is reserved as asked (the provider refuses it anyway).
    /// </summary>
    public static long OutputBound(ProviderKind kind, PassthroughRoute route, JsonObject body, ResolvedModel model)
    {
        if (route.Embeddings) return 0;
        long? limit;
        long choices;
        if (kind == ProviderKind.Gemini)
        {
            var config = body["generationConfig"] as JsonObject;
            limit = UsageJson.ReadLong(config?["maxOutputTokens"]);
            choices = UsageJson.ReadLong(config?["candidateCount"]) ?? 1;
        }
        else
        {
            limit = Max(Max(UsageJson.ReadLong(body["max_tokens"]), UsageJson.ReadLong(body["max_completion_tokens"])), UsageJson.ReadLong(body["max_output_tokens"]));
            choices = kind == ProviderKind.OpenAi ? UsageJson.ReadLong(body["n"]) ?? 1 : 1;
        }
        return (limit is > 0 ? limit.Value : model.MaxOutputTokens) * Math.Clamp(choices, 1, 128);

        static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);
    }

    /// <summary>
    /// The provider's own usage fields in one answer (or one SSE event) → ours; null when it has none.
    /// OpenAI: <c>usage</c> (chat and embeddings' prompt/completion tokens, the Responses API's input/output
    /// tokens, cached tokens in the details). Anthropic: <c>usage</c>, every input token (uncached, cache
    /// read, cache write) a prompt token, reads the cached part, as the chat adapter counts them. Gemini:
    /// <c>usageMetadata</c>, thoughts billed as output as Google bills them.
    /// </summary>
    public static TokenUsage? ReadUsage(ProviderKind kind, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) return null;
        switch (kind)
        {
            case ProviderKind.Anthropic:
            {
                if (!root.TryGetProperty("usage"u8, out var u) || u.ValueKind != JsonValueKind.Object) return null;
                if (Long(u, "input_tokens"u8) is not { } input || Long(u, "output_tokens"u8) is not { } output) return null;
                var read = Long(u, "cache_read_input_tokens"u8) ?? 0;
                var written = Long(u, "cache_creation_input_tokens"u8) ?? 0;
                return Checked(input + read + written, output, read);
            }
            case ProviderKind.Gemini:
            {
                if (!root.TryGetProperty("usageMetadata"u8, out var u) || u.ValueKind != JsonValueKind.Object) return null;
                if (Long(u, "promptTokenCount"u8) is not { } prompt) return null;
                var output = (Long(u, "candidatesTokenCount"u8) ?? 0) + (Long(u, "thoughtsTokenCount"u8) ?? 0);
                return Checked(prompt, output, Long(u, "cachedContentTokenCount"u8) ?? 0);
            }
            default:
            {
                if (!root.TryGetProperty("usage"u8, out var u) || u.ValueKind != JsonValueKind.Object) return null;
                if ((Long(u, "prompt_tokens"u8) ?? Long(u, "input_tokens"u8)) is not { } prompt) return null;
                var output = Long(u, "completion_tokens"u8) ?? Long(u, "output_tokens"u8) ?? 0;
                var cached = Long(Property(u, "prompt_tokens_details"u8), "cached_tokens"u8) ?? Long(Property(u, "input_tokens_details"u8), "cached_tokens"u8) ?? 0;
                return Checked(prompt, output, cached);
            }
        }
    }

    /// <summary>Provider usage is untrusted input (RELIABILITY L8): negative counts are no usage at all.</summary>
    private static TokenUsage? Checked(long prompt, long output, long cached) =>
        prompt < 0 || output < 0 || cached < 0 ? null : new TokenUsage(prompt, output, cached);

    private static JsonElement Property(JsonElement element, ReadOnlySpan<byte> name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) ? value : default;

    private static long? Long(JsonElement element, ReadOnlySpan<byte> name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
            && value.TryGetInt64(out var l) ? l : null;
}
