using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>Runs recorded upstream bytes through the real SSE parser and a translator, as the relay does.</summary>
internal static class TranslatorHarness
{
    public static readonly ModelPricing Pricing = new(3_000_000, 15_000_000, 300_000, 10_000);

    /// <summary>A provider as the registry would build it, for calling an adapter directly (nothing is sent).</summary>
    public static Provider Upstream(string name, ProviderKind kind, string baseUrl, string apiKey, ProviderAdapter adapter) => new()
    {
        Name = name, Kind = kind, BaseUrl = new Uri(baseUrl), ApiKey = apiKey,
        Timeout = TimeSpan.FromSeconds(5), StreamIdleTimeout = TimeSpan.FromSeconds(5), Adapter = adapter,
        Http = new HttpMessageInvoker(new SocketsHttpHandler()), Breaker = Polly.ResiliencePipeline<HttpResponseMessage>.Empty,
    };

    public static ChatCall Call(string body, bool clientWantsUsage = true, int maxOutputTokens = 64_000)
    {
        var json = (JsonObject)JsonNode.Parse(body)!;
        return new ChatCall
        {
            Body = json,
            Model = new ResolvedModel("vendor/model", "Model", "chat", "vendor", 200_000, maxOutputTokens, Pricing, [], DateTimeOffset.UnixEpoch),
            Stream = json["stream"]?.GetValue<bool>() == true,
            ClientWantsUsage = clientWantsUsage,
            CompletionId = "chatcmpl-test",
            Created = 1_700_000_000,
            MaxOutputTokens = (int)((json["max_completion_tokens"] ?? json["max_tokens"])?.GetValue<long>() ?? maxOutputTokens),
            ClientSetMaxTokens = (json["max_completion_tokens"] ?? json["max_tokens"]) is not null,
            OutputBound = (int)((json["max_completion_tokens"] ?? json["max_tokens"])?.GetValue<long>() ?? maxOutputTokens),
            Choices = 1,
            MediaTokensBound = 0,
        };
    }

    /// <summary>The data of every event written to the client, in order; the input is split at awkward places to test resumption.</summary>
    public static List<string> Run(ChatStreamTranslator translator, string upstream, int splitEvery = 7)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new SseWriter(output);
        var parser = new SseParser();
        var bytes = Encoding.UTF8.GetBytes(upstream);
        var pending = Array.Empty<byte>();
        for (var i = 0; i < bytes.Length; i += splitEvery)
        {
            pending = [.. pending, .. bytes.AsSpan(i, Math.Min(splitEvery, bytes.Length - i))];
            var buffer = new ReadOnlySequence<byte>(pending);
            parser.Parse(ref buffer, translator, writer);
            pending = buffer.ToArray();
        }
        parser.Finish(new ReadOnlySequence<byte>(pending), translator, writer);
        translator.Complete(writer);
        return [.. Encoding.UTF8.GetString(output.WrittenSpan).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e["data: ".Length..] : throw new InvalidOperationException(e))];
    }

    public static JsonObject Json(string data) => (JsonObject)JsonNode.Parse(data)!;

    public static JsonObject Delta(string data) => (JsonObject)Json(data)["choices"]![0]!["delta"]!;

    public static string BodyOf(HttpRequestMessage request) => request.Content!.ReadAsStringAsync().GetAwaiter().GetResult();
}
