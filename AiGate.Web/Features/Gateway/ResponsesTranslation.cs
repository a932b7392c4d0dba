using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using AiGate.Web.Infrastructure;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Gateway;

/// <summary>An OpenAI Responses request as the internal chat call, and what it holds that a chat call cannot carry.</summary>
internal sealed record TranslatedResponses(JsonObject ChatBody, string? Untranslatable, int Images, int Files);

/// <summary>
/// OpenAI's Responses API ↔ the internal chat call, for routes that do not serve <c>/responses</c> themselves (Anthropic,
/// Gemini, echo, OpenAI-compatible servers): <c>instructions</c> and the input items become chat messages (input_text,
/// input_image, earlier output_text, function calls and their outputs), function tools and <c>text.format</c> their chat
/// equivalents; the answer, a <c>chat.completion</c>, becomes a <c>response</c> object. What has no chat equivalent
/// (hosted tools, input files, stored prompts, references to stored items) is named in
/// <see cref="TranslatedResponses.Untranslatable"/>: a 400 unless a route serves the Responses API natively.
/// Reasoning items of earlier turns and the <c>reasoning</c>, <c>include</c> and <c>truncation</c> hints are dropped.
/// </summary>
internal static class ResponsesTranslation
{
    public static TranslatedResponses ToChat(JsonObject request)
    {
        string? untranslatable = null;
        int images = 0, files = 0;
        void Refuse(string what) => untranslatable ??= what;

        var messages = new JsonArray();
        if (Str(request["instructions"]) is { Length: > 0 } instructions) messages.Add(new JsonObject { ["role"] = "system", ["content"] = instructions });
        switch (request["input"])
        {
            case JsonValue text:
                messages.Add(new JsonObject { ["role"] = "user", ["content"] = Str(text) ?? "" });
                break;
            case JsonArray items:
                foreach (var node in items)
                {
                    var item = (JsonObject)node!;
                    switch (ItemType(item))
                    {
                        case "message":
                            messages.Add(Message(item, ref images, ref files, Refuse));
                            break;
                        case "function_call":
                            var toolCall = ToolCall(Str(item["call_id"]) ?? NewToolCallId(), Str(item["name"]) ?? "", Str(item["arguments"]) ?? "{}");
                            // Consecutive calls are one assistant turn with several tool_calls, as chat wants them.
                            if (messages.Count > 0 && messages[^1] is JsonObject { } last && Str(last["role"]) == "assistant" && last["tool_calls"] is JsonArray calls)
                                calls.Add(toolCall);
                            else messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = null, ["tool_calls"] = new JsonArray(toolCall) });
                            break;
                        case "function_call_output":
                            messages.Add(new JsonObject
                            {
                                ["role"] = "tool", ["tool_call_id"] = Str(item["call_id"]) ?? "", ["content"] = OutputText(item["output"], Refuse),
                            });
                            break;
                        case "reasoning":
                            break;   // an earlier turn's reasoning: only the provider that wrote it can read it
                        case var other:
                            Refuse($"'{other}' input items");
                            break;
                    }
                }
                break;
        }

        var chat = new JsonObject { ["model"] = Str(request["model"]), ["messages"] = messages };
        if (request["max_output_tokens"] is JsonValue max) chat["max_completion_tokens"] = max.DeepClone();
        if (request["stream"] is JsonValue stream) chat["stream"] = stream.DeepClone();
        if (request["temperature"] is JsonValue temperature) chat["temperature"] = temperature.DeepClone();
        if (request["top_p"] is JsonValue topP) chat["top_p"] = topP.DeepClone();
        if (Str(request["user"]) is { } user) chat["user"] = user;
        if (request["parallel_tool_calls"] is JsonValue parallel && request["tools"] is JsonArray { Count: > 0 }) chat["parallel_tool_calls"] = parallel.DeepClone();
        if (request["tools"] is JsonArray tools && tools.Count > 0)
        {
            var functions = new JsonArray();
            foreach (var tool in tools)
            {
                if (tool is not JsonObject t) continue;
                if (Str(t["type"]) is var kind && kind != "function")
                {
                    Refuse($"the '{kind}' tool");
                    continue;
                }
                var function = new JsonObject { ["name"] = Str(t["name"]) ?? "" };
                if (Str(t["description"]) is { } description) function["description"] = description;
                function["parameters"] = t["parameters"] is JsonObject schema ? schema.DeepClone() : new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
                if (t["strict"] is JsonValue strict) function["strict"] = strict.DeepClone();
                functions.Add(new JsonObject { ["type"] = "function", ["function"] = function });
            }
            if (functions.Count > 0) chat["tools"] = functions;
        }
        switch (request["tool_choice"])
        {
            case JsonValue choice when Str(choice) is { } mode:
                if (chat["tools"] is not null) chat["tool_choice"] = mode;
                break;
            case JsonObject choice when Str(choice["type"]) == "function":
                chat["tool_choice"] = new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = Str(choice["name"]) ?? "" } };
                break;
            case JsonObject choice:
                Refuse($"the tool_choice '{Str(choice["type"])}'");
                break;
        }
        if (request["text"]?["format"] is JsonObject format)
        {
            switch (Str(format["type"]))
            {
                case "json_schema":
                    var schema = new JsonObject { ["name"] = Str(format["name"]) ?? "response" };
                    if (Str(format["description"]) is { } description) schema["description"] = description;
                    if (format["schema"] is JsonObject s) schema["schema"] = s.DeepClone();
                    if (format["strict"] is JsonValue strict) schema["strict"] = strict.DeepClone();
                    chat["response_format"] = new JsonObject { ["type"] = "json_schema", ["json_schema"] = schema };
                    break;
                case "json_object":
                    chat["response_format"] = new JsonObject { ["type"] = "json_object" };
                    break;
            }
        }
        if (request["prompt"] is JsonObject) Refuse("a stored 'prompt'");
        return new TranslatedResponses(chat, untranslatable, images, files);
    }

    /// <summary>An input item's type: a bare <c>{role, content}</c> is a message (OpenAI's "easy input message").</summary>
    public static string? ItemType(JsonObject item) => Str(item["type"]) ?? (item["role"] is not null ? "message" : null);

    private static JsonObject Message(JsonObject item, ref int images, ref int files, Action<string> refuse)
    {
        var role = Str(item["role"]) switch
        {
            "developer" or "system" => "system",   // every adapter reads system; OpenAI reads it as developer on its newer models
            var r => r ?? "user",
        };
        if (item["content"] is JsonValue plain) return new JsonObject { ["role"] = role, ["content"] = Str(plain) ?? "" };
        var parts = new JsonArray();
        var text = new System.Text.StringBuilder();
        foreach (var node in (JsonArray)item["content"]!)
        {
            var part = (JsonObject)node!;
            switch (Str(part["type"]))
            {
                case "input_text" or "output_text" or "text":
                    text.Append(Str(part["text"]));
                    parts.Add(new JsonObject { ["type"] = "text", ["text"] = Str(part["text"]) ?? "" });
                    break;
                case "refusal":
                    text.Append(Str(part["refusal"]));
                    break;
                case "input_image":
                    images++;
                    if (Str(part["image_url"]) is { } url)
                    {
                        var image = new JsonObject { ["url"] = url };
                        if (Str(part["detail"]) is { } detail) image["detail"] = detail;
                        parts.Add(new JsonObject { ["type"] = "image_url", ["image_url"] = image });
                    }
                    else refuse("input_image parts given by file_id");
                    break;
                case "input_file":
                    files++;
                    refuse("input_file parts");
                    break;
                case var other:
                    refuse($"'{other}' content parts");
                    break;
            }
        }
        // Earlier assistant turns are plain text in chat (every adapter reads that); user and system turns keep their parts.
        return role == "assistant"
            ? new JsonObject { ["role"] = role, ["content"] = text.ToString() }
            : new JsonObject { ["role"] = role, ["content"] = parts };
    }

    private static string OutputText(JsonNode? output, Action<string> refuse)
    {
        if (output is JsonValue value) return Str(value) ?? value.ToJsonString();
        if (output is not JsonArray parts) return "";
        var text = new System.Text.StringBuilder();
        foreach (var part in parts)
        {
            if (part is JsonObject p && Str(p["type"]) is "input_text" or "output_text") text.Append(Str(p["text"]));
            else refuse("function_call_output content other than text");
        }
        return text.ToString();
    }

    /// <summary>
    /// The <c>response</c> object around an answer: the request's settings echoed as OpenAI echoes them, <c>store</c>
    /// false (nothing is kept), and the given status, output and usage.
    /// </summary>
    public static JsonObject Envelope(JsonObject request, ChatCall call, string status, JsonArray output, JsonObject? usage, string? incompleteReason = null) => new()
    {
        ["id"] = call.CompletionId,
        ["object"] = "response",
        ["created_at"] = call.Created,
        ["status"] = status,
        ["background"] = false,
        ["error"] = null,
        ["incomplete_details"] = incompleteReason is null ? null : new JsonObject { ["reason"] = incompleteReason },
        ["instructions"] = request["instructions"]?.DeepClone(),
        ["max_output_tokens"] = request["max_output_tokens"]?.DeepClone(),
        ["model"] = call.Model.Id,
        ["output"] = output,
        ["parallel_tool_calls"] = request["parallel_tool_calls"]?.DeepClone() ?? true,
        ["previous_response_id"] = null,
        ["reasoning"] = new JsonObject { ["effort"] = null, ["summary"] = null },
        ["store"] = false,
        ["temperature"] = request["temperature"]?.DeepClone() ?? 1.0,
        ["text"] = request["text"]?.DeepClone() ?? new JsonObject { ["format"] = new JsonObject { ["type"] = "text" } },
        ["tool_choice"] = request["tool_choice"]?.DeepClone() ?? "auto",
        ["tools"] = request["tools"]?.DeepClone() ?? new JsonArray(),
        ["top_p"] = request["top_p"]?.DeepClone() ?? 1.0,
        ["truncation"] = "disabled",
        ["usage"] = usage,
        ["user"] = request["user"]?.DeepClone(),
        ["metadata"] = request["metadata"]?.DeepClone() ?? new JsonObject(),
    };

    /// <summary>A <c>chat.completion</c> (first choice) → a <c>response</c>: a message item of output_text, then a function_call item per tool call.</summary>
    public static JsonObject ToResponse(JsonObject request, JsonObject completion, ChatCall call, TokenUsage usage, long costMicros)
    {
        var output = new JsonArray();
        var choice = (completion["choices"] as JsonArray)?.FirstOrDefault() as JsonObject;
        var message = choice?["message"] as JsonObject;
        if (Str(message?["content"]) is { Length: > 0 } text) output.Add(MessageItem(NewItemId("msg_"), text, "completed"));
        if (message?["tool_calls"] is JsonArray calls)
            foreach (var c in calls)
                if (c is JsonObject toolCall && toolCall["function"] is JsonObject function)
                    output.Add(FunctionCallItem(NewItemId("fc_"), Str(toolCall["id"]) ?? NewToolCallId(), Str(function["name"]) ?? "", Str(function["arguments"]) ?? "{}", "completed"));
        var truncated = Str(choice?["finish_reason"]) == "length";
        return Envelope(request, call, truncated ? "incomplete" : "completed", output, Usage(usage, costMicros), truncated ? "max_output_tokens" : null);
    }

    public static JsonObject MessageItem(string id, string text, string status) => new()
    {
        ["id"] = id,
        ["type"] = "message",
        ["status"] = status,
        ["role"] = "assistant",
        ["content"] = new JsonArray(OutputTextPart(text)),
    };

    public static JsonObject OutputTextPart(string text) => new() { ["type"] = "output_text", ["text"] = text, ["annotations"] = new JsonArray(), ["logprobs"] = new JsonArray() };

    public static JsonObject FunctionCallItem(string id, string callId, string name, string arguments, string status) => new()
    {
        ["id"] = id, ["type"] = "function_call", ["status"] = status, ["arguments"] = arguments, ["call_id"] = callId, ["name"] = name,
    };

    public static string NewItemId(string prefix) => PrefixedId.New(prefix);

    /// <summary>Our usage in the Responses shape (input includes the cached part, as OpenAI reports it), with our cost in USD.</summary>
    public static JsonObject Usage(TokenUsage usage, long costMicros) => new()
    {
        ["input_tokens"] = usage.PromptTokens,
        ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = usage.CachedTokens },
        ["output_tokens"] = usage.CompletionTokens,
        ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
        ["total_tokens"] = usage.TotalTokens,
        ["cost"] = ModelPricing.MicrosToUsd(costMicros),
    };

    /// <summary>OpenAI's Responses usage (<c>input_tokens</c> with <c>input_tokens_details.cached_tokens</c>, <c>output_tokens</c>); null when missing or negative.</summary>
    public static TokenUsage? ReadUsage(JsonNode? usage)
    {
        if (usage is not JsonObject u) return null;
        var input = UsageJson.ReadLong(u["input_tokens"]);
        var output = UsageJson.ReadLong(u["output_tokens"]);
        var cached = UsageJson.ReadLong(u["input_tokens_details"]?["cached_tokens"]) ?? 0;
        if (input is not { } i || output is not { } o || i < 0 || o < 0 || cached < 0) return null;
        return new TokenUsage(i, o, Math.Min(cached, i));
    }

    /// <summary>
    /// A native <c>response</c> object as the chat answer billing reads (<see cref="ChatBilling.Billable"/>): its output
    /// text, refusals and function calls, with the provider's usage, so the Responses API is billed by the same rules.
    /// </summary>
    public static ChatCompletionResult ForBilling(JsonObject response)
    {
        var text = new System.Text.StringBuilder();
        var calls = new JsonArray();
        if (response["output"] is JsonArray output)
            foreach (var item in output)
            {
                if (item is not JsonObject i) continue;
                if (Str(i["type"]) == "function_call") calls.Add(ToolCall(Str(i["call_id"]) ?? "", Str(i["name"]) ?? "", Str(i["arguments"]) ?? ""));
                else if (i["content"] is JsonArray parts)
                    foreach (var part in parts)
                        text.Append(Str(part?["text"])).Append(Str(part?["refusal"]));
            }
        var message = new JsonObject { ["content"] = text.ToString(), ["tool_calls"] = calls };
        var completion = new JsonObject { ["choices"] = new JsonArray(new JsonObject { ["message"] = message }) };
        return new ChatCompletionResult(completion, ReadUsage(response["usage"]));
    }
}
