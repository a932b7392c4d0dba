using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// The <c>echo</c> provider: an in-process upstream that speaks OpenAI's wire format, so local runs
/// and tests exercise the whole gateway (routing, streaming, usage, billing) with no network and
/// no provider key. Deterministic: the reply is "Echo: " and the last user message, capped at
/// <c>max_tokens</c> words; tokens are counted as ceil(UTF-8 bytes / 4). Refused in Production.
/// </summary>
public sealed class EchoUpstreamHandler : HttpMessageHandler
{
    /// <summary>A valid 1×1 transparent PNG: what every echo image is.</summary>
    private const string TinyPng = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    /// <summary>OpenAI's images response: n tiny PNGs, as base64 or as data: URLs (there is no server to fetch from).</summary>
    private static JsonObject Images(JsonObject body)
    {
        var n = body["n"] is JsonValue count && count.TryGetValue<int>(out var c) ? Math.Clamp(c, 1, 10) : 1;
        var url = body["response_format"]?.GetValue<string>() == "url";
        var data = new JsonArray();
        for (var i = 0; i < n; i++)
            data.Add(url ? new JsonObject { ["url"] = "data:image/png;base64," + TinyPng, ["revised_prompt"] = body["prompt"]?.GetValue<string>() }
                : new JsonObject { ["b64_json"] = TinyPng, ["revised_prompt"] = body["prompt"]?.GetValue<string>() });
        return new JsonObject { ["created"] = 1_700_000_000, ["data"] = data };
    }

    /// <summary>A WAV of <paramref name="seconds"/> of silence (8 kHz, 16-bit mono): what the echo provider says aloud, whatever format was asked.</summary>
    private static HttpResponseMessage Wav(double seconds)
    {
        const int rate = 8000;
        var dataBytes = (int)(rate * seconds) * 2;
        var wav = new byte[44 + dataBytes];
        void Ascii(int at, string text) => Encoding.ASCII.GetBytes(text).CopyTo(wav, at);
        void Int(int at, int value) => BitConverter.TryWriteBytes(wav.AsSpan(at, 4), value);
        void Short(int at, short value) => BitConverter.TryWriteBytes(wav.AsSpan(at, 2), value);
        Ascii(0, "RIFF"); Int(4, 36 + dataBytes); Ascii(8, "WAVE");
        Ascii(12, "fmt "); Int(16, 16); Short(20, 1); Short(22, 1); Int(24, rate); Int(28, rate * 2); Short(32, 2); Short(34, 16);
        Ascii(36, "data"); Int(40, dataBytes);
        var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(wav) };
        response.Content.Headers.ContentType = new MediaTypeHeaderValue("audio/wav");
        return response;
    }

    /// <summary>OpenAI's moderation response: nothing flagged, every category false and scored 0.</summary>
    private static JsonObject Moderations(JsonObject body)
    {
        var inputs = body["input"] is JsonArray array && array.All(i => i is JsonValue) ? array.Count : 1;
        string[] categories = ["harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent", "self-harm",
            "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic"];
        var results = new JsonArray();
        for (var i = 0; i < inputs; i++)
        {
            JsonObject flags = [], scores = [], applied = [];
            foreach (var category in categories)
            {
                flags[category] = false;
                scores[category] = 0.0;
                applied[category] = new JsonArray("text");
            }
            results.Add(new JsonObject { ["flagged"] = false, ["categories"] = flags, ["category_scores"] = scores, ["category_applied_input_types"] = applied });
        }
        return new JsonObject { ["id"] = "modr-echo", ["model"] = body["model"]?.GetValue<string>() ?? "echo-moderation", ["results"] = results };
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri!.AbsolutePath;
        if (request.Method == HttpMethod.Get && path.EndsWith("/models", StringComparison.Ordinal)) return Json(ModelList());   // the health probe
        var body = JsonNode.Parse(await request.Content!.ReadAsByteArrayAsync(cancellationToken)) as JsonObject ?? [];
        if (path.EndsWith("/embeddings", StringComparison.Ordinal)) return Json(Embeddings(body));
        if (path.EndsWith("/images/generations", StringComparison.Ordinal)) return Json(Images(body));
        if (path.EndsWith("/moderations", StringComparison.Ordinal)) return Json(Moderations(body));
        if (path.EndsWith("/audio/speech", StringComparison.Ordinal)) return Wav(0.25);
        if (!path.EndsWith("/chat/completions", StringComparison.Ordinal)) return new HttpResponseMessage(HttpStatusCode.NotFound);

        var model = body["model"]?.GetValue<string>() ?? "echo";
        var prompt = body["messages"]?.ToJsonString() ?? "";
        var reply = Reply(body);
        var promptTokens = Tokens(prompt);
        var completionTokens = Tokens(reply);
        var id = "chatcmpl-echo" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(prompt)))[..16];
        var usage = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens };

        if (body["stream"]?.GetValueKind() != JsonValueKind.True)
        {
            return Json(new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion", ["created"] = 1_700_000_000, ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply },
                    ["finish_reason"] = "stop",
                }),
                ["usage"] = usage,
            });
        }

        var sse = new StringBuilder();
        void Chunk(JsonObject delta, string? finish) => sse.Append("data: ").Append(new JsonObject
        {
            ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = 1_700_000_000, ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
        }.ToJsonString()).Append("\n\n");
        Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null);
        var words = reply.Split(' ');
        for (var i = 0; i < words.Length; i++) Chunk(new JsonObject { ["content"] = (i == 0 ? "" : " ") + words[i] }, null);
        Chunk([], "stop");
        if (body["stream_options"]?["include_usage"]?.GetValueKind() == JsonValueKind.True)
            sse.Append("data: ").Append(new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = 1_700_000_000, ["model"] = model,
                ["choices"] = new JsonArray(), ["usage"] = usage,
            }.ToJsonString()).Append("\n\n");
        sse.Append("data: [DONE]\n\n");
        var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(sse.ToString())) };
        response.Content.Headers.ContentType = new MediaTypeHeaderValue("text/event-stream");
        return response;
    }

    private static string Reply(JsonObject body)
    {
        var last = body["messages"] is JsonArray messages
            ? messages.OfType<JsonObject>().LastOrDefault(m => m["role"]?.GetValue<string>() == "user")?["content"]
            : null;
        var text = last switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonArray parts => string.Join(" ", parts.OfType<JsonObject>().Where(p => p["type"]?.GetValue<string>() == "text")
                .Select(p => p["text"]?.GetValue<string>() ?? "")),
            _ => "",
        };
        var words = ("Echo: " + text).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var max = body["max_tokens"] ?? body["max_completion_tokens"];
        var limit = max is JsonValue m && m.TryGetValue<int>(out var n) && n > 0 ? n : 256;
        return string.Join(' ', words.Take(limit));
    }

    /// <summary>OpenAI's <c>GET /v1/models</c> list shape, with the echo models.</summary>
    private static JsonObject ModelList() => new()
    {
        ["object"] = "list",
        ["data"] = new JsonArray(
            new JsonObject { ["id"] = "echo-1", ["object"] = "model", ["created"] = 1_700_000_000, ["owned_by"] = "aigate" },
            new JsonObject { ["id"] = "echo-embed", ["object"] = "model", ["created"] = 1_700_000_000, ["owned_by"] = "aigate" }),
    };

    private static JsonObject Embeddings(JsonObject body)
    {
        var inputs = body["input"] switch
        {
            JsonArray array => array.Select(i => i?.ToJsonString() ?? "").ToList(),
            { } single => [single.ToJsonString()],
            _ => [],
        };
        var dimensions = body["dimensions"] is JsonValue d && d.TryGetValue<int>(out var dim) && dim is > 0 and <= 4096 ? dim : 8;
        var base64 = body["encoding_format"]?.GetValue<string>() == "base64";
        var data = new JsonArray();
        for (var i = 0; i < inputs.Count; i++)
        {
            var hash = SHA256.HashData(Encoding.UTF8.GetBytes(inputs[i]));
            var vector = Enumerable.Range(0, dimensions).Select(k => (hash[k % hash.Length] - 128) / 128f).ToArray();
            data.Add(new JsonObject
            {
                ["object"] = "embedding",
                ["index"] = i,
                ["embedding"] = base64 ? Convert.ToBase64String(MemoryMarshal.AsBytes(vector.AsSpan())) : new JsonArray([.. vector.Select(x => (JsonNode)x)]),
            });
        }
        var tokens = inputs.Sum(Tokens);
        return new JsonObject
        {
            ["object"] = "list", ["data"] = data, ["model"] = body["model"]?.GetValue<string>() ?? "echo",
            ["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens },
        };
    }

    private static int Tokens(string text) => (Encoding.UTF8.GetByteCount(text) + 3) / 4;

    private static HttpResponseMessage Json(JsonObject body)
    {
        var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body)) };
        response.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return response;
    }
}
