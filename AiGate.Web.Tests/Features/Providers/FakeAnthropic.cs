using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>
/// A stand-in for Anthropic's Messages API, speaking its documented wire format (docs "Messages" and
/// "Streaming Messages"): it refuses requests the real API would refuse (missing x-api-key or
/// anthropic-version, no max_tokens, a system role inside messages, non-alternating turns, empty
/// content) and answers by the scenario word in the last user text. <c>GET /v1/models</c> (the health
/// probe) answers the Models API's list, or 529 overloaded while <c>overloaded</c> says so.
/// </summary>
public static class FakeAnthropic
{
    public const string ProviderKey = "test-provider-key";

    // Recorded answers, shaped as the API reference shows them (ids and counts are ours).
    public const string TextMessage = """
        {"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
         "content":[{"type":"text","text":"Hello from Claude!"}],"stop_reason":"end_turn","stop_sequence":null,
         "usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":15,"service_tier":"standard"}}
        """;

    public const string ToolUseMessage = """
        {"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
         "content":[{"type":"text","text":"I'll check the weather."},
                    {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"city":"Paris","unit":"celsius"}}],
         "stop_reason":"tool_use","stop_sequence":null,
         "usage":{"input_tokens":380,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":62}}
        """;

    public const string MaxTokensMessage = """
        {"id":"msg_01Max","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
         "content":[{"type":"text","text":"Once upon a"}],"stop_reason":"max_tokens","stop_sequence":null,
         "usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}
        """;

    public const string TextStream =
        "event: message_start\n" +
        "data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-sonnet-4-5-20250929\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"cache_creation_input_tokens\": 10, \"cache_read_input_tokens\": 100, \"output_tokens\": 1}}}\n\n" +
        "event: content_block_start\n" +
        "data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n" +
        "event: ping\n" +
        "data: {\"type\": \"ping\"}\n\n" +
        "event: content_block_delta\n" +
        "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\n" +
        "event: content_block_delta\n" +
        "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \" from \\\"Claude\\\"!\"}}\n\n" +
        "event: content_block_stop\n" +
        "data: {\"type\": \"content_block_stop\", \"index\": 0}\n\n" +
        "event: message_delta\n" +
        "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}\n\n" +
        "event: message_stop\n" +
        "data: {\"type\": \"message_stop\"}\n\n";

    public const string ToolStream =
        "event: message_start\n" +
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2},\"content\":[],\"stop_reason\":null}}\n\n" +
        "event: content_block_start\n" +
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
        "event: ping\n" +
        "data: {\"type\": \"ping\"}\n\n" +
        "event: content_block_delta\n" +
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}\n\n" +
        "event: content_block_stop\n" +
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
        "event: content_block_start\n" +
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n" +
        "event: content_block_delta\n" +
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n" +
        "event: content_block_delta\n" +
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Par\"}}\n\n" +
        "event: content_block_delta\n" +
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n" +
        "event: content_block_stop\n" +
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
        "event: message_delta\n" +
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n" +
        "event: message_stop\n" +
        "data: {\"type\":\"message_stop\"}\n\n";

    public const string ErrorStream =
        "event: message_start\n" +
        "data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_err\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-sonnet-4-5-20250929\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 30, \"output_tokens\": 1}}}\n\n" +
        "event: content_block_start\n" +
        "data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n" +
        "event: content_block_delta\n" +
        "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Partial answer that goes on for a while\"}}\n\n" +
        "event: error\n" +
        "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";

    public const string BadRequestError = """{"type":"error","error":{"type":"invalid_request_error","message":"messages: text content blocks must contain non-whitespace text"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}""";
    public const string OverloadedError = """{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""";

    public const string ModelList = """
        {"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}],
         "has_more":false,"first_id":"claude-sonnet-4-5","last_id":"claude-sonnet-4-5"}
        """;

    /// <summary>Starts the fake; <paramref name="violations"/> collects every way a request differed from what the real API accepts.</summary>
    public static Task<FakeUpstream> StartAsync(ConcurrentQueue<string> violations, Func<bool>? overloaded = null) => FakeUpstream.StartAsync(app =>
    {
        app.MapGet("/v1/models", async (HttpContext context) =>
        {
            if (CheckHeaders(context.Request) is { } problem)
            {
                violations.Enqueue(problem);
                await Json(context, problem.StartsWith("x-api-key", StringComparison.Ordinal) ? 401 : 400,
                    $$$"""{"type":"error","error":{"type":"invalid_request_error","message":{{{JsonValue.Create(problem).ToJsonString()}}}}}""");
                return;
            }
            await (overloaded?.Invoke() == true ? Json(context, 529, OverloadedError) : Json(context, 200, ModelList));
        });
        app.MapPost("/v1/messages", async (HttpContext context) =>
        {
            var body = JsonNode.Parse(await new StreamReader(context.Request.Body).ReadToEndAsync()) as JsonObject ?? [];
            var problem = Validate(context.Request, body);
            if (problem is not null)
            {
                violations.Enqueue(problem);
                await Json(context, problem.StartsWith("x-api-key", StringComparison.Ordinal) ? 401 : 400,
                    $$$"""{"type":"error","error":{"type":"invalid_request_error","message":{{{JsonValue.Create(problem).ToJsonString()}}}}}""");
                return;
            }
            var messages = (JsonArray)body["messages"]!;
            var lastUser = messages[^1]!["content"]!;
            var text = lastUser is JsonArray blocks ? string.Join(" ", blocks.Select(b => b?["text"]?.GetValue<string>())) : lastUser.GetValue<string>();
            var answeredTool = lastUser is JsonArray b2 && b2.Any(x => x?["type"]?.GetValue<string>() == "tool_result");
            var stream = body["stream"]?.GetValue<bool>() == true;

            if (text.Contains("BAD REQUEST", StringComparison.Ordinal)) { await Json(context, 400, BadRequestError); return; }
            if (text.Contains("OVERLOADED", StringComparison.Ordinal)) { await Json(context, 529, OverloadedError); return; }
            if (stream && text.Contains("LONG", StringComparison.Ordinal))
            {
                await LongStreamAsync(context, text);
                return;
            }
            if (stream)
            {
                await Sse(context, text.Contains("MIDSTREAM ERROR", StringComparison.Ordinal) ? ErrorStream
                    : text.Contains("TOOLS", StringComparison.Ordinal) && !answeredTool ? ToolStream : TextStream);
                return;
            }
            if (text.Contains("LONG", StringComparison.Ordinal))
            {
                await LongMessageAsync(context, text);
                return;
            }
            await Json(context, 200, text.Contains("MAX", StringComparison.Ordinal) ? MaxTokensMessage
                : text.Contains("TOOLS", StringComparison.Ordinal) && !answeredTool ? ToolUseMessage : TextMessage);
        });
    });

    private static string? CheckHeaders(HttpRequest request)
    {
        if (request.Headers["x-api-key"] != ProviderKey) return "x-api-key header missing or not the provider key";
        if (request.Headers.Authorization.Count > 0) return "an Authorization header was sent (the gateway key must not reach the provider)";
        if (request.Headers["anthropic-version"] != "2023-06-01") return "anthropic-version: Field required";
        return null;
    }

    private static string? Validate(HttpRequest request, JsonObject body)
    {
        if (CheckHeaders(request) is { } problem) return problem;
        if (request.ContentType?.StartsWith("application/json", StringComparison.Ordinal) != true) return "content-type must be application/json";
        if (body["model"]?.GetValue<string>() != "claude-sonnet-4-5") return "model: unexpected model";
        if (body["max_tokens"] is not JsonValue max || max.GetValue<long>() < 1) return "max_tokens: Field required";
        if (body["messages"] is not JsonArray { Count: > 0 } messages) return "messages: Field required";
        if (body["system"] is { } system && system is not JsonArray && system.GetValueKind() != System.Text.Json.JsonValueKind.String) return "system: must be a string or text blocks";
        string? previous = null;
        for (var i = 0; i < messages.Count; i++)
        {
            var role = messages[i]?["role"]?.GetValue<string>();
            if (role is not ("user" or "assistant")) return $"messages.{i}.role: Input should be 'user' or 'assistant'";
            if (role == previous) return $"messages.{i}: roles must alternate between user and assistant";
            if (i == 0 && role != "user") return "messages.0: first message must use the user role";
            previous = role;
            var content = messages[i]!["content"];
            if (content is JsonArray blocks)
            {
                if (blocks.Count == 0) return $"messages.{i}.content: at least one block is required";
                foreach (var block in blocks)
                {
                    var type = block?["type"]?.GetValue<string>();
                    if (type is not ("text" or "image" or "tool_use" or "tool_result")) return $"messages.{i}.content: unknown block type {type}";
                    if (type == "text" && string.IsNullOrWhiteSpace(block!["text"]?.GetValue<string>())) return "messages: text content blocks must be non-empty";
                    if (type == "tool_result" && role != "user") return "tool_result blocks belong in user messages";
                    if (type == "tool_use" && (block!["input"] is not JsonObject || block["id"] is null)) return "tool_use.input must be an object";
                    if (type == "image" && block!["source"] is not JsonObject { } source) return $"messages.{i}.content: image.source: Field required";
                    if (type == "image" && block!["source"]!["type"]?.GetValue<string>() switch
                        {
                            "base64" => block["source"]!["media_type"] is null || block["source"]!["data"] is null,
                            "url" => block["source"]!["url"] is null,
                            _ => true,
                        }) return $"messages.{i}.content: image.source: needs type base64 with media_type and data, or type url with url";
                }
            }
            else if (content?.GetValue<string>() is not { Length: > 0 }) return $"messages.{i}.content: must be non-empty";
        }
        if (body["tools"] is JsonArray tools)
            foreach (var tool in tools)
                if (tool?["input_schema"]?["type"]?.GetValue<string>() != "object" || tool["name"] is null) return "tools.0.input_schema: must be an object schema";
        return null;
    }

    /// <summary>
    /// A long answer (<see cref="LongReply"/>) in one message, not streamed. With GENERATE SLOWLY in the prompt it takes
    /// 2 s to answer (a model generating; the wait ends when the gateway hangs up); with LOWUSAGE it reports 1 output token;
    /// with BODY AFTER HEADERS its headers go out at once and the body 1.5 s later (chunked, as a proxy in front may send it).
    /// </summary>
    private static async Task LongMessageAsync(HttpContext context, string prompt)
    {
        if (prompt.Contains("GENERATE SLOWLY", StringComparison.Ordinal))
        {
            try { await Task.Delay(TimeSpan.FromSeconds(2), context.RequestAborted); }
            catch (OperationCanceledException) { return; }
        }
        var message = new JsonObject
        {
            ["id"] = "msg_01LongNotStreamed", ["type"] = "message", ["role"] = "assistant", ["model"] = "claude-sonnet-4-5-20250929",
            ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = LongReply.Text }),
            ["stop_reason"] = "end_turn", ["stop_sequence"] = null,
            ["usage"] = new JsonObject
            {
                ["input_tokens"] = 25, ["cache_creation_input_tokens"] = 0, ["cache_read_input_tokens"] = 0,
                ["output_tokens"] = prompt.Contains("LOWUSAGE", StringComparison.Ordinal) ? 1 : 700,
            },
        };
        if (prompt.Contains("BODY AFTER HEADERS", StringComparison.Ordinal)) await HeadersFirstAsync(context, "application/json");
        await Json(context, 200, message.ToJsonString());
    }

    /// <summary>Sends the answer's headers now and holds its body back for 1.5 s.</summary>
    internal static async Task HeadersFirstAsync(HttpContext context, string contentType)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = contentType;
        await context.Response.StartAsync();
        await context.Response.Body.FlushAsync();
        await Task.Delay(TimeSpan.FromMilliseconds(1500), context.RequestAborted);
    }

    private static async Task Json(HttpContext context, int status, string json)
    {
        if (!context.Response.HasStarted)   // BODY AFTER HEADERS sent them already
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
        }
        await context.Response.WriteAsync(json);
    }

    /// <summary>
    /// A long answer (<see cref="LongReply"/>) after a thinking block, as Anthropic streams extended
    /// thinking: thinking_delta events, a signature_delta, then the text block. With STALL, DROP or
    /// MALFORMED in the prompt it stops half-way through the text (silence, a reset connection, an event
    /// whose JSON is cut off); with LOWUSAGE it ends normally but reports 1 output token; with SLOW each text
    /// delta comes 200 ms after the previous one (a model generating a long answer, ~40 s in all),
    /// with BRISK 20 ms (~4 s in all).
    /// </summary>
    private static async Task LongStreamAsync(HttpContext context, string prompt)
    {
        var ct = context.RequestAborted;
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        async Task Event(string name, JsonObject data)
        {
            await context.Response.WriteAsync($"event: {name}\ndata: {data.ToJsonString()}\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
        }
        JsonObject Delta(int index, JsonObject delta) => new() { ["type"] = "content_block_delta", ["index"] = index, ["delta"] = delta };

        try
        {
            await Event("message_start", new JsonObject
            {
                ["type"] = "message_start",
                ["message"] = new JsonObject
                {
                    ["id"] = "msg_01LongLongLong", ["type"] = "message", ["role"] = "assistant", ["content"] = new JsonArray(),
                    ["model"] = "claude-sonnet-4-5-20250929", ["stop_reason"] = null, ["stop_sequence"] = null,
                    ["usage"] = new JsonObject { ["input_tokens"] = 25, ["cache_creation_input_tokens"] = 0, ["cache_read_input_tokens"] = 0, ["output_tokens"] = 1 },
                },
            });
            await Event("content_block_start", new JsonObject { ["type"] = "content_block_start", ["index"] = 0, ["content_block"] = new JsonObject { ["type"] = "thinking", ["thinking"] = "" } });
            foreach (var part in LongReply.Thinking.Split(". "))
                await Event("content_block_delta", Delta(0, new JsonObject { ["type"] = "thinking_delta", ["thinking"] = part + ". " }));
            await Event("content_block_delta", Delta(0, new JsonObject { ["type"] = "signature_delta", ["signature"] = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds" }));
            await Event("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = 0 });
            await Event("content_block_start", new JsonObject { ["type"] = "content_block_start", ["index"] = 1, ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" } });
            await Event("ping", new JsonObject { ["type"] = "ping" });
            var pause = prompt.Contains("SLOW", StringComparison.Ordinal) ? 200 : prompt.Contains("BRISK", StringComparison.Ordinal) ? 20 : 0;
            for (var i = 0; i < LongReply.Pieces.Count; i++)
            {
                if (pause > 0) await Task.Delay(pause, ct);
                if (i == LongReply.Pieces.Count / 2)
                {
                    if (prompt.Contains("STALL", StringComparison.Ordinal)) { await Task.Delay(TimeSpan.FromSeconds(30), ct); return; }
                    if (prompt.Contains("DROP", StringComparison.Ordinal)) { await Task.Delay(300, ct); context.Abort(); return; }
                    if (prompt.Contains("MALFORMED", StringComparison.Ordinal))
                    {
                        await context.Response.WriteAsync("event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 1, \"delta\": {\"type\": \"text_del\n\n", ct);
                        await context.Response.Body.FlushAsync(ct);
                        return;
                    }
                }
                await Event("content_block_delta", Delta(1, new JsonObject { ["type"] = "text_delta", ["text"] = LongReply.Pieces[i] }));
            }
            await Event("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = 1 });
            var outputTokens = prompt.Contains("LOWUSAGE", StringComparison.Ordinal) ? 1 : 700;
            await Event("message_delta", new JsonObject
            {
                ["type"] = "message_delta", ["delta"] = new JsonObject { ["stop_reason"] = "end_turn", ["stop_sequence"] = null },
                ["usage"] = new JsonObject { ["output_tokens"] = outputTokens },
            });
            await Event("message_stop", new JsonObject { ["type"] = "message_stop" });
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // the gateway went away
        }
    }

    /// <summary>Writes the recorded stream one event at a time, flushing between events as the real API does.</summary>
    private static async Task Sse(HttpContext context, string events)
    {
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        foreach (var chunk in events.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(chunk + "\n\n"));
            await context.Response.Body.FlushAsync();
        }
    }
}
