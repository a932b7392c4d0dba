using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Gateway;

/// <summary>An Anthropic Messages request as the internal (OpenAI-shaped) chat call, and what it holds that a chat call cannot carry.</summary>
internal sealed record TranslatedMessages(JsonObject ChatBody, string? Untranslatable, int Images, int Documents);

/// <summary>
/// Anthropic's Messages API ↔ the internal chat call, for routes that do not speak Messages (OpenAI-kind, Gemini,
/// echo): the request becomes an OpenAI chat body, which the provider's adapter translates as for
/// <c>/chat/completions</c>; the answer, an OpenAI <c>chat.completion</c>, becomes an Anthropic <c>message</c>.
/// What has no equivalent (documents, server tools, images inside tool results, MCP servers) is named in
/// <see cref="TranslatedMessages.Untranslatable"/>: a 400 unless every route is Anthropic's own. Hints that change no
/// meaning are dropped: <c>cache_control</c>, <c>top_k</c>, <c>thinking</c>, thinking blocks of earlier turns.
/// </summary>
internal static class MessagesTranslation
{
    public static TranslatedMessages ToChat(JsonObject request)
    {
        string? untranslatable = null;
        int images = 0, documents = 0;
        void Refuse(string what) => untranslatable ??= what;

        var messages = new JsonArray();
        switch (request["system"])
        {
            case JsonValue v when v.TryGetValue<string>(out var s) && s.Length > 0:
                messages.Add(new JsonObject { ["role"] = "system", ["content"] = s });
                break;
            case JsonArray blocks:
                var parts = new JsonArray();
                foreach (var block in blocks)
                {
                    if (Str(block?["type"]) == "text" && Str(block!["text"]) is { } text) parts.Add(new JsonObject { ["type"] = "text", ["text"] = text });
                    else Refuse("'system' blocks other than text");
                }
                if (parts.Count > 0) messages.Add(new JsonObject { ["role"] = "system", ["content"] = parts });
                break;
        }

        foreach (var node in (JsonArray)request["messages"]!)
        {
            var message = (JsonObject)node!;
            var role = Str(message["role"])!;
            if (message["content"] is JsonValue plain)
            {
                messages.Add(new JsonObject { ["role"] = role, ["content"] = Str(plain) ?? "" });
                continue;
            }
            var content = (JsonArray)message["content"]!;
            if (role == "assistant")
            {
                string? text = null;
                var toolCalls = new JsonArray();
                foreach (var block in content)
                {
                    switch (Str(block?["type"]))
                    {
                        case "text":
                            text += Str(block!["text"]);
                            break;
                        case "tool_use":
                            toolCalls.Add(ToolCall(Str(block!["id"]) ?? NewToolCallId(), Str(block["name"]) ?? "",
                                block["input"] is JsonObject input ? input.ToJsonString() : "{}"));
                            break;
                        case "thinking" or "redacted_thinking":
                            break;   // the provider's own reasoning of an earlier turn: no other provider can read it
                        case var other:
                            Refuse($"assistant '{other}' blocks");
                            break;
                    }
                }
                var assistant = new JsonObject { ["role"] = "assistant", ["content"] = text ?? (toolCalls.Count > 0 ? null : "") };
                if (toolCalls.Count > 0) assistant["tool_calls"] = toolCalls;
                messages.Add(assistant);
                continue;
            }

            // A user turn: tool results first, as OpenAI wants tool messages right after the assistant's calls.
            var userParts = new JsonArray();
            foreach (var block in content)
            {
                if (block is not JsonObject b) continue;
                switch (Str(b["type"]))
                {
                    case "text":
                        userParts.Add(new JsonObject { ["type"] = "text", ["text"] = Str(b["text"]) ?? "" });
                        break;
                    case "image":
                        images++;
                        if (ImagePart(b) is { } image) userParts.Add(image);
                        else Refuse("image blocks whose source is not base64 or url");
                        break;
                    case "tool_result":
                        messages.Add(new JsonObject
                        {
                            ["role"] = "tool",
                            ["tool_call_id"] = Str(b["tool_use_id"]) ?? "",
                            ["content"] = ToolResultText(b, Refuse),
                        });
                        break;
                    case "document":
                        documents++;
                        Refuse("'document' blocks");
                        break;
                    case var other:
                        Refuse($"'{other}' blocks");
                        break;
                }
            }
            if (userParts.Count > 0) messages.Add(new JsonObject { ["role"] = "user", ["content"] = userParts });
        }

        var chat = new JsonObject
        {
            ["model"] = Str(request["model"]),
            ["messages"] = messages,
            // max_completion_tokens: OpenAI's own API wants it (its reasoning models refuse max_tokens); the OpenAI adapter adds max_tokens for compatible servers.
            ["max_completion_tokens"] = request["max_tokens"]?.DeepClone(),
        };
        if (request["stream"] is JsonValue stream) chat["stream"] = stream.DeepClone();
        if (request["temperature"] is JsonValue temperature) chat["temperature"] = temperature.DeepClone();
        if (request["top_p"] is JsonValue topP) chat["top_p"] = topP.DeepClone();
        if (request["stop_sequences"] is JsonArray stop && stop.Count > 0) chat["stop"] = stop.DeepClone();
        if (Str((request["metadata"] as JsonObject)?["user_id"]) is { } user) chat["user"] = user;
        if (request["tools"] is JsonArray tools && tools.Count > 0)
        {
            var functions = new JsonArray();
            foreach (var tool in tools)
            {
                if (tool is not JsonObject t) continue;
                if (Str(t["type"]) is { } kind && kind != "custom")
                {
                    Refuse($"the server tool '{kind}'");
                    continue;
                }
                var function = new JsonObject { ["name"] = Str(t["name"]) ?? "" };
                if (Str(t["description"]) is { } description) function["description"] = description;
                function["parameters"] = t["input_schema"] is JsonObject schema ? schema.DeepClone() : new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() };
                functions.Add(new JsonObject { ["type"] = "function", ["function"] = function });
            }
            if (functions.Count > 0) chat["tools"] = functions;
        }
        if (request["tool_choice"] is JsonObject choice)
        {
            switch (Str(choice["type"]))
            {
                case "auto": chat["tool_choice"] = "auto"; break;
                case "any": chat["tool_choice"] = "required"; break;
                case "none": chat["tool_choice"] = "none"; break;
                case "tool": chat["tool_choice"] = new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = Str(choice["name"]) ?? "" } }; break;
            }
            if (choice["disable_parallel_tool_use"]?.GetValueKind() == JsonValueKind.True && chat["tools"] is not null) chat["parallel_tool_calls"] = false;
        }
        if (request["mcp_servers"] is JsonArray { Count: > 0 }) Refuse("'mcp_servers'");
        if (request["container"] is { } container && container.GetValueKind() != JsonValueKind.Null) Refuse("'container'");
        return new TranslatedMessages(chat, untranslatable, images, documents);
    }

    private static JsonObject? ImagePart(JsonObject block)
    {
        var source = block["source"] as JsonObject;
        var url = Str(source?["type"]) switch
        {
            "base64" when Str(source!["media_type"]) is { } mediaType && Str(source["data"]) is { } data => $"data:{mediaType};base64,{data}",
            "url" => Str(source!["url"]),
            _ => null,
        };
        return url is null ? null : new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = url } };
    }

    private static string ToolResultText(JsonObject block, Action<string> refuse)
    {
        var text = block["content"] switch
        {
            JsonValue v => Str(v) ?? "",
            JsonArray parts => JoinText(parts, refuse),
            _ => "",
        };
        // is_error has no field in a tool message: the model reads it from the text.
        return block["is_error"]?.GetValueKind() == JsonValueKind.True ? "Error: " + text : text;
    }

    private static string JoinText(JsonArray parts, Action<string> refuse)
    {
        var text = new System.Text.StringBuilder();
        foreach (var part in parts)
        {
            if (part is JsonObject p && Str(p["type"]) == "text") text.Append(Str(p["text"]));
            else refuse("tool_result content other than text");
        }
        return text.ToString();
    }

    /// <summary>OpenAI's finish_reason → Anthropic's stop_reason.</summary>
    public static string StopReason(string? finishReason) => finishReason switch
    {
        "length" => "max_tokens",
        "tool_calls" or "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    };

    /// <summary>A <c>chat.completion</c> (first choice) → an Anthropic <c>message</c> with the usage billed.</summary>
    public static JsonObject ToMessage(JsonObject completion, ChatCall call, TokenUsage usage)
    {
        var content = new JsonArray();
        var choice = (completion["choices"] as JsonArray)?.FirstOrDefault() as JsonObject;
        var message = choice?["message"] as JsonObject;
        if (Str(message?["content"]) is { Length: > 0 } text) content.Add(new JsonObject { ["type"] = "text", ["text"] = text });
        if (message?["tool_calls"] is JsonArray calls)
            foreach (var c in calls)
                if (c is JsonObject toolCall && toolCall["function"] is JsonObject function)
                    content.Add(new JsonObject
                    {
                        ["type"] = "tool_use",
                        ["id"] = Str(toolCall["id"]) ?? NewToolCallId(),
                        ["name"] = Str(function["name"]) ?? "",
                        ["input"] = ArgumentsObject(function["arguments"]),
                    });
        return new JsonObject
        {
            ["id"] = call.CompletionId,
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = call.Model.Id,
            ["content"] = content,
            ["stop_reason"] = StopReason(Str(choice?["finish_reason"])),
            ["stop_sequence"] = null,
            ["usage"] = Usage(usage),
        };
    }

    /// <summary>Our usage in Anthropic's shape: input_tokens are the uncached prompt tokens, cache reads apart.</summary>
    public static JsonObject Usage(TokenUsage usage) => new()
    {
        ["input_tokens"] = Math.Max(0, usage.PromptTokens - usage.CachedTokens),
        ["cache_creation_input_tokens"] = 0,
        ["cache_read_input_tokens"] = usage.CachedTokens,
        ["output_tokens"] = usage.CompletionTokens,
    };
}
