using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// The fake's Responses API (<c>POST /v1/responses</c>: a <c>response</c> object, or its named events from
/// response.created to response.completed, each with its sequence_number and no [DONE]) and legacy completions
/// (<c>POST /v1/completions</c>: a <c>text_completion</c>, or its chunks ending in [DONE]), with the same scripted faults
/// and usage as chat. Like OpenAI, /v1/responses refuses the chat parameters (<c>messages</c>, <c>max_tokens</c>).
/// </summary>
public sealed partial class FakeOpenAi
{
    public int ResponsesRequests => _server.Requests.Count(r => r.PathAndQuery == "/v1/responses");
    public int CompletionsRequests => _server.Requests.Count(r => r.PathAndQuery == "/v1/completions");

    private const string ResponseId = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b";
    private const string MessageId = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b";

    private JsonObject ResponseUsage(int completionTokens) => new()
    {
        ["input_tokens"] = PromptTokens,
        ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = CachedTokens },
        ["output_tokens"] = completionTokens,
        ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
        ["total_tokens"] = PromptTokens + completionTokens,
    };

    /// <summary>OpenAI's response object as documented, with the request's settings echoed.</summary>
    private static JsonObject ResponseObject(JsonObject request, string model, string status, JsonArray output, JsonObject? usage) => new()
    {
        ["id"] = ResponseId, ["object"] = "response", ["created_at"] = 1741476542, ["status"] = status, ["background"] = false,
        ["error"] = null, ["incomplete_details"] = null, ["instructions"] = request["instructions"]?.DeepClone(),
        ["max_output_tokens"] = request["max_output_tokens"]?.DeepClone(), ["model"] = model + "-2024-07-18", ["output"] = output,
        ["parallel_tool_calls"] = true, ["previous_response_id"] = null,
        ["reasoning"] = new JsonObject { ["effort"] = null, ["summary"] = null }, ["service_tier"] = "default",
        ["store"] = request["store"]?.DeepClone() ?? true, ["temperature"] = 1.0,
        ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "text" } }, ["tool_choice"] = "auto",
        ["tools"] = new JsonArray(), ["top_p"] = 1.0, ["truncation"] = "disabled", ["usage"] = usage, ["user"] = null,
        ["metadata"] = request["metadata"]?.DeepClone() ?? new JsonObject(),
    };

    private static JsonObject MessageItem(string status, string text) => new()
    {
        ["type"] = "message", ["id"] = MessageId, ["status"] = status, ["role"] = "assistant",
        ["content"] = status == "in_progress" ? new JsonArray() : new JsonArray(TextPart(text)),
    };

    private static JsonObject TextPart(string text) => new() { ["type"] = "output_text", ["annotations"] = new JsonArray(), ["logprobs"] = new JsonArray(), ["text"] = text };

    private async Task ResponsesAsync(HttpContext context)
    {
        var body = (await System.Text.Json.JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body))!;
        var ct = context.RequestAborted;
        if (await RefusedKeyAsync(context)) return;
        foreach (var chatOnly in (string[])["messages", "max_tokens", "max_completion_tokens"])
        {
            if (body[chatOnly] is null) continue;
            context.Response.StatusCode = 400;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(new JsonObject
            {
                ["error"] = new JsonObject { ["message"] = $"Unsupported parameter: '{chatOnly}'.", ["type"] = "invalid_request_error", ["param"] = chatOnly, ["code"] = "unsupported_parameter" },
            }.ToJsonString(), ct);
            return;
        }
        if (await FailedAsync(context, Mode)) return;
        var model = body["model"]!.GetValue<string>();
        var completionTokens = Mode == Behaviour.LowUsage ? 1 : CompletionTokens;

        if (body["stream"]?.GetValue<bool>() != true)
        {
            if (JsonDelay > TimeSpan.Zero)
            {
                try { await Task.Delay(JsonDelay, ct); }
                catch (OperationCanceledException) { Interlocked.Increment(ref _aborted); return; }
            }
            context.Response.ContentType = "application/json";
            var answer = ResponseObject(body, model, "completed", new JsonArray(MessageItem("completed", Reply)), ResponseUsage(completionTokens));
            if (Mode == Behaviour.NoUsage) answer["usage"] = null;
            await context.Response.WriteAsync(answer.ToJsonString(Wire), ct);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        var sequence = 0;
        async Task Event(string type, JsonObject data)
        {
            var payload = new JsonObject { ["type"] = type, ["sequence_number"] = sequence++ };
            foreach (var (name, value) in data) payload[name] = value?.DeepClone();
            await context.Response.WriteAsync($"event: {type}\ndata: {payload.ToJsonString(Wire)}\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
        }
        var words = Reply.Split(' ');
        try
        {
            await Event("response.created", new JsonObject { ["response"] = ResponseObject(body, model, "in_progress", [], null) });
            await Event("response.in_progress", new JsonObject { ["response"] = ResponseObject(body, model, "in_progress", [], null) });
            await Event("response.output_item.added", new JsonObject { ["output_index"] = 0, ["item"] = MessageItem("in_progress", "") });
            await Event("response.content_part.added", new JsonObject
            {
                ["item_id"] = MessageId, ["output_index"] = 0, ["content_index"] = 0, ["part"] = TextPart(""),
            });
            for (var i = 0; i < words.Length; i++)
            {
                if (Mode == Behaviour.SlowStream) await Task.Delay(200, ct);
                else if (WordDelay > TimeSpan.Zero) await Task.Delay(WordDelay, ct);
                if (i == words.Length / 2 && await BreakHalfwayAsync(context, model)) return;
                await Event("response.output_text.delta", new JsonObject
                {
                    ["item_id"] = MessageId, ["output_index"] = 0, ["content_index"] = 0, ["delta"] = (i == 0 ? "" : " ") + words[i], ["logprobs"] = new JsonArray(),
                });
            }
            await Event("response.output_text.done", new JsonObject
            {
                ["item_id"] = MessageId, ["output_index"] = 0, ["content_index"] = 0, ["text"] = Reply, ["logprobs"] = new JsonArray(),
            });
            await Event("response.content_part.done", new JsonObject { ["item_id"] = MessageId, ["output_index"] = 0, ["content_index"] = 0, ["part"] = TextPart(Reply) });
            await Event("response.output_item.done", new JsonObject { ["output_index"] = 0, ["item"] = MessageItem("completed", Reply) });
            var usage = Mode == Behaviour.NoUsage ? null : ResponseUsage(completionTokens);
            await Event("response.completed", new JsonObject
            {
                ["response"] = ResponseObject(body, model, "completed", new JsonArray(MessageItem("completed", Reply)), usage),
            });
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            Interlocked.Increment(ref _aborted);
        }
    }

    /// <summary>Legacy <c>/v1/completions</c>: one choice per prompt (the reply), usage as chat; streamed as text_completion chunks.</summary>
    private async Task CompletionsAsync(HttpContext context)
    {
        var body = (await System.Text.Json.JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body))!;
        var ct = context.RequestAborted;
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, Mode)) return;
        var model = body["model"]!.GetValue<string>();
        var prompts = body["prompt"] is JsonArray array ? array.Count : 1;
        var completionTokens = Mode == Behaviour.LowUsage ? 1 : CompletionTokens;
        var usage = new JsonObject { ["prompt_tokens"] = PromptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = PromptTokens + completionTokens };
        JsonObject Completion(JsonArray choices) => new()
        {
            ["id"] = "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", ["object"] = "text_completion", ["created"] = 1589478378, ["model"] = model,
            ["system_fingerprint"] = "fp_44709d6fcb", ["choices"] = choices,
        };
        static JsonObject Choice(int index, string text, string? finish) => new() { ["text"] = text, ["index"] = index, ["logprobs"] = null, ["finish_reason"] = finish };

        if (body["stream"]?.GetValue<bool>() != true)
        {
            var choices = new JsonArray();
            for (var i = 0; i < prompts; i++) choices.Add(Choice(i, Reply, "stop"));
            var answer = Completion(choices);
            if (Mode != Behaviour.NoUsage) answer["usage"] = usage;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(answer.ToJsonString(Wire), ct);
            return;
        }
        context.Response.ContentType = "text/event-stream";
        var words = Reply.Split(' ');
        try
        {
            for (var p = 0; p < prompts; p++)
            {
                for (var i = 0; i < words.Length; i++)
                {
                    if (WordDelay > TimeSpan.Zero) await Task.Delay(WordDelay, ct);
                    if (p == 0 && i == words.Length / 2 && await BreakHalfwayAsync(context, model)) return;
                    await Send(context, Completion(new JsonArray(Choice(p, (i == 0 ? "" : " ") + words[i], null))).ToJsonString(Wire));
                }
                await Send(context, Completion(new JsonArray(Choice(p, "", "stop"))).ToJsonString(Wire));
            }
            if (body["stream_options"]?["include_usage"]?.GetValue<bool>() == true && Mode != Behaviour.NoUsage)
            {
                var last = Completion([]);
                last["usage"] = usage;
                await Send(context, last.ToJsonString(Wire));
            }
            await context.Response.WriteAsync("data: [DONE]\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            Interlocked.Increment(ref _aborted);
        }
    }
}
