using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>
/// A stand-in for the Gemini API (<c>models.generateContent</c> and <c>models.streamGenerateContent</c>
/// with <c>alt=sse</c>, and <c>models.list</c> for the health probe), speaking its documented wire format: every SSE event is a whole
/// GenerateContentResponse, lines end in CRLF, and the stream just ends (no [DONE]). It refuses what
/// the real API refuses (no x-goog-api-key, a wrong path or model, roles other than user/model,
/// empty parts, a part with no data field) and answers by the scenario word in the last user text.
/// </summary>
public static class FakeGemini
{
    public const string ProviderKey = "test-provider-key";

    public const string TextResponse = """
        {"candidates":[{"content":{"parts":[{"text":"Hello from Gemini!"}],"role":"model"},"finishReason":"STOP","index":0}],
         "usageMetadata":{"promptTokenCount":40,"candidatesTokenCount":5,"totalTokenCount":75,"cachedContentTokenCount":16,
           "promptTokensDetails":[{"modality":"TEXT","tokenCount":40}],"thoughtsTokenCount":30},
         "modelVersion":"gemini-2.5-flash","responseId":"mAitaLmkHPPlz7IPvtfUqQ4"}
        """;

    public const string FunctionCallResponse = """
        {"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"CiIBVKhc7oDHVd"}],"role":"model"},
           "finishReason":"STOP","index":0}],
         "usageMetadata":{"promptTokenCount":70,"candidatesTokenCount":15,"totalTokenCount":85},
         "modelVersion":"gemini-2.5-flash","responseId":"fc-1"}
        """;

    public const string SafetyResponse = """
        {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"SAFETY","index":0,
           "safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}],
         "usageMetadata":{"promptTokenCount":9,"totalTokenCount":9},"modelVersion":"gemini-2.5-flash","responseId":"safety-1"}
        """;

    /// <summary>Three events as alt=sse sends them (CRLF line ends); usage grows, the last carries finishReason.</summary>
    public const string TextStream =
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 40,\"candidatesTokenCount\": 1,\"totalTokenCount\": 41,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 40}]},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"s1\"}\r\n\r\n" +
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" from \\\"Gemini\\\"\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 40,\"candidatesTokenCount\": 4,\"totalTokenCount\": 44},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"s1\"}\r\n\r\n" +
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"!\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 40,\"candidatesTokenCount\": 5,\"totalTokenCount\": 75,\"cachedContentTokenCount\": 16,\"thoughtsTokenCount\": 30},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"s1\"}\r\n\r\n";

    public const string FunctionCallStream =
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}},\"thoughtSignature\": \"CiIBVKhc7oDHVd\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 70,\"candidatesTokenCount\": 15,\"totalTokenCount\": 85},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"s2\"}\r\n\r\n";

    public const string ErrorStream =
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Partial\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 40,\"candidatesTokenCount\": 1,\"totalTokenCount\": 41},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"s3\"}\r\n\r\n" +
        "data: {\"error\": {\"code\": 503,\"message\": \"The model is overloaded. Please try again later.\",\"status\": \"UNAVAILABLE\"}}\r\n\r\n";

    public const string BadRequestError = """
        {
          "error": {
            "code": 400,
            "message": "* GenerateContentRequest.contents: contents is not specified\n",
            "status": "INVALID_ARGUMENT"
          }
        }
        """;

    /// <summary>The Gemini API's answer to a wrong, deleted or missing API key (HTTP 400, not 401/403).</summary>
    public const string InvalidKeyError = """
        {"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
          "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com",
                      "metadata":{"service":"generativelanguage.googleapis.com"}},
                     {"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key not valid. Please pass a valid API key."}]}}
        """;

    public const string UnavailableError = """{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}""";

    public const string ModelList = """
        {"models":[{"name":"models/gemini-2.5-flash","version":"001","displayName":"Gemini 2.5 Flash","inputTokenLimit":1048576,"outputTokenLimit":65536,
          "supportedGenerationMethods":["generateContent","countTokens"]}],
         "nextPageToken":"Chdtb2RlbHMvZ2VtaW5pLTIuNS1mbGFzaA=="}
        """;

    public static Task<FakeUpstream> StartAsync(ConcurrentQueue<string> violations) => FakeUpstream.StartAsync(app =>
    {
        // models.list, the health probe's call.
        app.MapGet("/v1beta/models", async (HttpContext context) =>
        {
            if (CheckKey(context.Request) is { } problem)
            {
                violations.Enqueue(problem);
                await Json(context, 403, $$$"""{"error":{"code":403,"message":{{{JsonValue.Create(problem).ToJsonString()}}},"status":"PERMISSION_DENIED"}}""");
                return;
            }
            await Json(context, 200, ModelList);
        });
        app.MapPost("/v1beta/models/{**rest}", async (HttpContext context, string rest) =>
        {
            var body = JsonNode.Parse(await new StreamReader(context.Request.Body).ReadToEndAsync()) as JsonObject ?? [];
            var stream = rest == "gemini-2.5-flash:streamGenerateContent";
            var problem = Validate(context.Request, rest, stream, body);
            if (problem is not null)
            {
                violations.Enqueue(problem);
                // A wrong key gets what the Gemini API answers it: 400 INVALID_ARGUMENT with the ErrorInfo reason API_KEY_INVALID.
                await Json(context, 400, problem.StartsWith("API key", StringComparison.Ordinal) ? InvalidKeyError
                    : $$$"""{"error":{"code":400,"message":{{{JsonValue.Create(problem).ToJsonString()}}},"status":"INVALID_ARGUMENT"}}""");
                return;
            }
            var contents = (JsonArray)body["contents"]!;
            var lastParts = (JsonArray)contents[^1]!["parts"]!;
            var text = string.Join(" ", lastParts.Select(p => p?["text"]?.GetValue<string>()));
            var answeredTool = lastParts.Any(p => p?["functionResponse"] is not null);

            if (text.Contains("BAD REQUEST", StringComparison.Ordinal)) { await Json(context, 400, BadRequestError); return; }
            if (text.Contains("OVERLOADED", StringComparison.Ordinal)) { await Json(context, 503, UnavailableError); return; }
            if (stream && text.Contains("LONG", StringComparison.Ordinal))
            {
                await LongStreamAsync(context, text);
                return;
            }
            if (stream)
            {
                await Sse(context, text.Contains("MIDSTREAM ERROR", StringComparison.Ordinal) ? ErrorStream
                    : text.Contains("TOOLS", StringComparison.Ordinal) && !answeredTool ? FunctionCallStream : TextStream);
                return;
            }
            if (text.Contains("LONG", StringComparison.Ordinal))
            {
                await LongResponseAsync(context, text);
                return;
            }
            await Json(context, 200, text.Contains("SAFETY", StringComparison.Ordinal) ? SafetyResponse
                : text.Contains("TOOLS", StringComparison.Ordinal) && !answeredTool ? FunctionCallResponse : TextResponse);
        });
    });

    private static readonly string[] PartFields = ["text", "inlineData", "fileData", "functionCall", "functionResponse"];

    private static string? CheckKey(HttpRequest request)
    {
        if (request.Headers["x-goog-api-key"] != ProviderKey) return "API key not valid. Please pass a valid API key.";
        if (request.Headers.Authorization.Count > 0 || request.Query.ContainsKey("key")) return "the key must travel only in x-goog-api-key";
        return null;
    }

    private static string? Validate(HttpRequest request, string rest, bool stream, JsonObject body)
    {
        if (CheckKey(request) is { } problem) return problem;
        if (rest is not ("gemini-2.5-flash:generateContent" or "gemini-2.5-flash:streamGenerateContent")) return $"unexpected path models/{rest}";
        if (stream && request.Query["alt"] != "sse") return "streamGenerateContent without alt=sse answers a JSON array, not events";
        if (!stream && request.Query.Count > 0) return "unexpected query string";
        if (body["contents"] is not JsonArray { Count: > 0 } contents) return "* GenerateContentRequest.contents: contents is not specified";
        if (body["model"] is not null || body["messages"] is not null) return "Invalid JSON payload received. Unknown name \"messages\"";
        for (var i = 0; i < contents.Count; i++)
        {
            var role = contents[i]?["role"]?.GetValue<string>();
            if (role is not ("user" or "model")) return $"contents[{i}].role: Please use a valid role: user, model.";
            if (contents[i]!["parts"] is not JsonArray { Count: > 0 } parts) return $"contents[{i}].parts: must not be empty";
            foreach (var part in parts)
            {
                var fields = ((JsonObject)part!).Select(p => p.Key).Where(PartFields.Contains).ToList();
                if (fields.Count != 1) return $"contents[{i}].parts: each part needs exactly one data field";
                if (part!["functionCall"] is { } call && (call["args"] is not JsonObject || role != "model")) return "functionCall.args must be an object in a model turn";
                if (part["inlineData"] is { } inline && (inline["mimeType"] is null || inline["data"] is null)) return "inlineData needs mimeType and data";
                if (part["functionResponse"] is { } response && (response["response"] is not JsonObject || response["name"] is null)) return "functionResponse needs a name and a response object";
            }
        }
        if (body["systemInstruction"] is { } system && system["parts"] is not JsonArray) return "systemInstruction.parts is required";
        return null;
    }

    /// <summary>
    /// A long answer (<see cref="LongReply"/>) in one response, not streamed. With GENERATE SLOWLY in the prompt it takes
    /// 2 s to answer (the wait ends when the gateway hangs up); with LOWUSAGE it reports 1 candidate token; with BODY AFTER
    /// HEADERS its headers go out at once and the body 1.5 s later.
    /// </summary>
    private static async Task LongResponseAsync(HttpContext context, string prompt)
    {
        if (prompt.Contains("GENERATE SLOWLY", StringComparison.Ordinal))
        {
            try { await Task.Delay(TimeSpan.FromSeconds(2), context.RequestAborted); }
            catch (OperationCanceledException) { return; }
        }
        var candidates = prompt.Contains("LOWUSAGE", StringComparison.Ordinal) ? 1 : 600;
        var response = new JsonObject
        {
            ["candidates"] = new JsonArray(new JsonObject
            {
                ["content"] = new JsonObject { ["parts"] = new JsonArray(new JsonObject { ["text"] = LongReply.Text }), ["role"] = "model" },
                ["finishReason"] = "STOP", ["index"] = 0,
            }),
            ["usageMetadata"] = new JsonObject { ["promptTokenCount"] = 40, ["candidatesTokenCount"] = candidates, ["totalTokenCount"] = 40 + candidates },
            ["modelVersion"] = "gemini-2.5-flash", ["responseId"] = "long-json-1",
        };
        if (prompt.Contains("BODY AFTER HEADERS", StringComparison.Ordinal)) await FakeAnthropic.HeadersFirstAsync(context, "application/json; charset=UTF-8");
        await Json(context, 200, response.ToJsonString());
    }

    private static async Task Json(HttpContext context, int status, string json)
    {
        if (!context.Response.HasStarted)   // BODY AFTER HEADERS sent them already
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json; charset=UTF-8";
        }
        await context.Response.WriteAsync(json);
    }

    /// <summary>The thinking tokens the long stream reports (Gemini counts them apart from candidatesTokenCount and sends no thought text).</summary>
    public const int LongThoughts = 120;

    /// <summary>
    /// A long answer (<see cref="LongReply"/>), a few words per event. As Gemini 2.5 does, every event's
    /// usageMetadata carries the prompt and thoughts counts but the candidates count only in the last
    /// event, with finishReason. With STALL, DROP or MALFORMED in the prompt it stops half-way (silence,
    /// a reset connection, an event whose JSON is cut off); with LOWUSAGE it reports 1 candidate token; with
    /// SLOW each event comes 200 ms after the previous one (a model generating a long answer, ~40 s in all),
    /// with BRISK 20 ms (~4 s in all).
    /// </summary>
    private static async Task LongStreamAsync(HttpContext context, string prompt)
    {
        var ct = context.RequestAborted;
        context.Response.ContentType = "text/event-stream";
        JsonObject Usage(int? candidates)
        {
            var usage = new JsonObject { ["promptTokenCount"] = 40 };
            if (candidates is { } c) usage["candidatesTokenCount"] = c;
            usage["totalTokenCount"] = 40 + LongThoughts + (candidates ?? 0);
            usage["promptTokensDetails"] = new JsonArray(new JsonObject { ["modality"] = "TEXT", ["tokenCount"] = 40 });
            usage["thoughtsTokenCount"] = LongThoughts;
            return usage;
        }
        async Task Event(string text, string? finishReason, int? candidates)
        {
            var candidate = new JsonObject { ["content"] = new JsonObject { ["parts"] = new JsonArray(new JsonObject { ["text"] = text }), ["role"] = "model" } };
            if (finishReason is not null) candidate["finishReason"] = finishReason;
            candidate["index"] = 0;
            var response = new JsonObject
            {
                ["candidates"] = new JsonArray(candidate), ["usageMetadata"] = Usage(candidates), ["modelVersion"] = "gemini-2.5-flash", ["responseId"] = "long-1",
            };
            await context.Response.WriteAsync("data: " + response.ToJsonString() + "\r\n\r\n", ct);
            await context.Response.Body.FlushAsync(ct);
        }

        try
        {
            var pieces = LongReply.Pieces;
            var pause = prompt.Contains("SLOW", StringComparison.Ordinal) ? 200 : prompt.Contains("BRISK", StringComparison.Ordinal) ? 20 : 0;
            for (var i = 0; i < pieces.Count - 1; i++)
            {
                if (pause > 0 && i > 0) await Task.Delay(pause, ct);
                if (i == pieces.Count / 2)
                {
                    if (prompt.Contains("STALL", StringComparison.Ordinal)) { await Task.Delay(TimeSpan.FromSeconds(30), ct); return; }
                    if (prompt.Contains("DROP", StringComparison.Ordinal)) { await Task.Delay(300, ct); context.Abort(); return; }
                    if (prompt.Contains("MALFORMED", StringComparison.Ordinal))
                    {
                        await context.Response.WriteAsync("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" and the\r\n\r\n", ct);
                        await context.Response.Body.FlushAsync(ct);
                        return;
                    }
                }
                await Event(pieces[i], null, null);
            }
            if (pause > 0) await Task.Delay(pause, ct);
            await Event(pieces[^1], "STOP", prompt.Contains("LOWUSAGE", StringComparison.Ordinal) ? 1 : 600);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // the gateway went away
        }
    }

    private static async Task Sse(HttpContext context, string events)
    {
        context.Response.ContentType = "text/event-stream";
        foreach (var chunk in events.Split("\r\n\r\n", StringSplitOptions.RemoveEmptyEntries))
        {
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(chunk + "\r\n\r\n"));
            await context.Response.Body.FlushAsync();
        }
    }
}
