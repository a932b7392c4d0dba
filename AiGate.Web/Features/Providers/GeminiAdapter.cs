using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// Google's Gemini API (<c>v1beta/models/{model}:generateContent</c>, and
/// <c>:streamGenerateContent?alt=sse</c> for streams), translated both ways. Roles become user/model,
/// system and developer messages the <c>systemInstruction</c>, tool calls <c>functionCall</c> parts and
/// tool results <c>functionResponse</c> parts (named after the call they answer, as Gemini has no call
/// ids). Usage: thinking tokens are billed as output, so completion = candidates + thoughts.
/// </summary>
public sealed class GeminiAdapter : ProviderAdapter
{
    public static readonly GeminiAdapter Instance = new();

    public override HttpRequestMessage CreateChatRequest(Provider provider, ChatCall call, string upstreamModel, string? apiKey)
    {
        var path = $"v1beta/models/{Uri.EscapeDataString(upstreamModel)}:" + (call.Stream ? "streamGenerateContent?alt=sse" : "generateContent");
        return Post(provider.Url(path), BuildRequest(call), call.Stream, headers => headers.TryAddWithoutValidation("x-goog-api-key", apiKey));
    }

    /// <summary>GET /v1beta/models (Gemini API models.list); one model is enough for a probe.</summary>
    public override HttpRequestMessage CreateModelsRequest(Provider provider, string? apiKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, provider.Url("v1beta/models?pageSize=1"));
        request.Headers.TryAddWithoutValidation("x-goog-api-key", apiKey);
        return request;
    }

    internal static JsonObject BuildRequest(ChatCall call)
    {
        var body = call.Body;
        var system = new JsonArray();
        var turns = new Turns("parts");
        var toolNames = new Dictionary<string, string>(StringComparer.Ordinal);

        foreach (var node in (JsonArray)body["messages"]!)
        {
            var message = (JsonObject)node!;
            switch (Str(message["role"]))
            {
                case "system" or "developer":
                    var instruction = Text(message["content"]);
                    if (instruction.Length > 0) system.Add(new JsonObject { ["text"] = instruction });
                    break;
                case "user":
                    turns.Add("user", Parts(message["content"]));
                    break;
                case "assistant":
                    var parts = Parts(message["content"]);
                    if (message["tool_calls"] is JsonArray calls)
                        foreach (var c in calls)
                        {
                            if (c is not JsonObject toolCall || toolCall["function"] is not JsonObject function) continue;
                            var name = Str(function["name"]) ?? "";
                            if (Str(toolCall["id"]) is { } id) toolNames[id] = name;
                            parts.Add(new JsonObject { ["functionCall"] = new JsonObject { ["name"] = name, ["args"] = ArgumentsObject(function["arguments"]) } });
                        }
                    turns.Add("model", parts);
                    break;
                case "tool":
                    var callId = Str(message["tool_call_id"]) ?? "";
                    turns.Add("user", [new JsonObject
                    {
                        ["functionResponse"] = new JsonObject
                        {
                            ["name"] = toolNames.GetValueOrDefault(callId, callId),
                            ["response"] = ResponseObject(Text(message["content"])),
                        },
                    }]);
                    break;
                case "function":
                    turns.Add("user", [new JsonObject
                    {
                        ["functionResponse"] = new JsonObject
                        {
                            ["name"] = Str(message["name"]) ?? "function",
                            ["response"] = ResponseObject(Text(message["content"])),
                        },
                    }]);
                    break;
            }
        }

        var request = new JsonObject { ["contents"] = turns.List };
        if (system.Count > 0) request["systemInstruction"] = new JsonObject { ["parts"] = system };
        if (body["tools"] is JsonArray tools && tools.Count > 0)
        {
            var declarations = new JsonArray();
            foreach (var t in tools)
            {
                if (t is not JsonObject tool || tool["function"] is not JsonObject function) continue;
                var declaration = new JsonObject { ["name"] = Str(function["name"]) ?? "" };
                if (Str(function["description"]) is { } description) declaration["description"] = description;
                // parametersJsonSchema takes JSON Schema as OpenAI clients write it; `parameters` wants Google's OpenAPI subset.
                if (function["parameters"] is JsonObject schema) declaration["parametersJsonSchema"] = schema.DeepClone();
                declarations.Add(declaration);
            }
            request["tools"] = new JsonArray(new JsonObject { ["functionDeclarations"] = declarations });
            if (FunctionCallingConfig(body["tool_choice"]) is { } config) request["toolConfig"] = new JsonObject { ["functionCallingConfig"] = config };
        }

        var generation = new JsonObject();
        // Always the call's limit (the client's, or ours): the reserved worst case bounds the cost.
        generation["maxOutputTokens"] = call.MaxOutputTokens;
        Copy(body, "temperature", generation, "temperature");
        Copy(body, "top_p", generation, "topP");
        Copy(body, "n", generation, "candidateCount");
        Copy(body, "seed", generation, "seed");
        Copy(body, "presence_penalty", generation, "presencePenalty");
        Copy(body, "frequency_penalty", generation, "frequencyPenalty");
        if (StopSequences(body["stop"]) is { Count: > 0 } stop) generation["stopSequences"] = stop;
        if (body["response_format"] is JsonObject format)
        {
            switch (Str(format["type"]))
            {
                case "json_object":
                    generation["responseMimeType"] = "application/json";
                    break;
                case "json_schema":
                    generation["responseMimeType"] = "application/json";
                    if (format["json_schema"]?["schema"] is JsonObject responseSchema) generation["responseJsonSchema"] = responseSchema.DeepClone();
                    break;
            }
        }
        if (generation.Count > 0) request["generationConfig"] = generation;
        return request;
    }

    private static void Copy(JsonObject from, string name, JsonObject to, string target)
    {
        if (from[name] is JsonValue value && value.GetValueKind() == JsonValueKind.Number) to[target] = value.DeepClone();
    }

    private static JsonObject? FunctionCallingConfig(JsonNode? toolChoice) => toolChoice switch
    {
        JsonValue v when Str(v) == "auto" => new JsonObject { ["mode"] = "AUTO" },
        JsonValue v when Str(v) == "none" => new JsonObject { ["mode"] = "NONE" },
        JsonValue v when Str(v) == "required" => new JsonObject { ["mode"] = "ANY" },
        JsonObject o when o["function"] is JsonObject f && Str(f["name"]) is { } name =>
            new JsonObject { ["mode"] = "ANY", ["allowedFunctionNames"] = new JsonArray(name) },
        _ => null,
    };

    /// <summary>A tool's output as Gemini's response object: a JSON object as is, anything else wrapped as {"content": …}.</summary>
    private static JsonObject ResponseObject(string output)
    {
        try
        {
            var parsed = JsonNode.Parse(output);
            return parsed as JsonObject ?? new JsonObject { ["content"] = parsed };
        }
        catch (JsonException)
        {
            return new JsonObject { ["content"] = output };
        }
    }

    private static JsonArray Parts(JsonNode? content)
    {
        var parts = new JsonArray();
        if (content is JsonValue v && v.TryGetValue<string>(out var s))
        {
            if (s.Length > 0) parts.Add(new JsonObject { ["text"] = s });
            return parts;
        }
        if (content is not JsonArray items) return parts;
        foreach (var i in items)
        {
            if (i is not JsonObject item) continue;
            switch (Str(item["type"]))
            {
                case "text" when Str(item["text"]) is { Length: > 0 } text:
                    parts.Add(new JsonObject { ["text"] = text });
                    break;
                case "image_url" when ImageUrl(item) is { } url:
                    if (TryParseDataUrl(url, out var mediaType, out var data))
                        parts.Add(new JsonObject { ["inlineData"] = new JsonObject { ["mimeType"] = mediaType, ["data"] = data } });
                    else
                    {
                        var file = new JsonObject();
                        if (GuessImageType(url) is { } guessed) file["mimeType"] = guessed;
                        file["fileUri"] = url;
                        parts.Add(new JsonObject { ["fileData"] = file });
                    }
                    break;
            }
        }
        return parts;
    }

    private static string? GuessImageType(string url)
    {
        var path = Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.AbsolutePath : url;
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => "image/png",
            ".jpg" or ".jpeg" => "image/jpeg",
            ".webp" => "image/webp",
            ".gif" => "image/gif",
            ".heic" => "image/heic",
            _ => null,
        };
    }

    public override ChatCompletionResult ReadChatCompletion(ReadOnlySpan<byte> body, ChatCall call)
    {
        using var document = ParseDocument(body);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new UpstreamProtocolException("The Gemini answer is not a JSON object.");

        var choices = new JsonArray();
        if (Property(root, "candidates"u8) is { ValueKind: JsonValueKind.Array } candidates)
        {
            var position = 0;
            foreach (var candidate in candidates.EnumerateArray())
            {
                var index = Long(candidate, "index"u8) is { } i ? (int)i : position;
                position++;
                string? text = null;
                var toolCalls = new JsonArray();
                foreach (var part in PartsOf(candidate))
                {
                    if (IsThought(part)) continue;
                    if (Property(part, "text"u8) is { ValueKind: JsonValueKind.String } t) text += t.GetString();
                    else if (Property(part, "functionCall"u8) is { ValueKind: JsonValueKind.Object } fc)
                        toolCalls.Add(ToolCall(NewToolCallId(), Property(fc, "name"u8).GetString() ?? "",
                            Property(fc, "args"u8) is { ValueKind: JsonValueKind.Object } args ? args.GetRawText() : "{}"));
                }
                choices.Add(Choice(index, text, toolCalls, FinishReason(Property(candidate, "finishReason"u8), toolCalls.Count > 0)));
            }
        }
        if (choices.Count == 0)
        {
            // No candidate at all: the prompt itself was blocked (promptFeedback.blockReason).
            if (Property(Property(root, "promptFeedback"u8), "blockReason"u8).ValueKind != JsonValueKind.String)
                throw new UpstreamProtocolException("The Gemini answer has no candidates.");
            choices.Add(Choice(0, null, null, "content_filter"));
        }
        return new ChatCompletionResult(Completion(call, choices), ReadUsage(Property(root, "usageMetadata"u8)));
    }

    private static JsonElement.ArrayEnumerator PartsOf(JsonElement candidate) =>
        Property(Property(candidate, "content"u8), "parts"u8) is { ValueKind: JsonValueKind.Array } parts ? parts.EnumerateArray() : default;

    private static bool IsThought(JsonElement part) => Property(part, "thought"u8).ValueKind == JsonValueKind.True;

    internal static string FinishReason(JsonElement finishReason, bool calledFunction)
    {
        if (finishReason.ValueKind != JsonValueKind.String) return calledFunction ? "tool_calls" : "stop";
        if (finishReason.ValueEquals("MAX_TOKENS"u8)) return "length";
        if (finishReason.ValueEquals("SAFETY"u8) || finishReason.ValueEquals("RECITATION"u8) || finishReason.ValueEquals("BLOCKLIST"u8)
            || finishReason.ValueEquals("PROHIBITED_CONTENT"u8) || finishReason.ValueEquals("SPII"u8) || finishReason.ValueEquals("IMAGE_SAFETY"u8))
            return "content_filter";
        return calledFunction ? "tool_calls" : "stop";   // STOP, and reasons OpenAI has no word for (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL…)
    }

    /// <summary>
    /// usageMetadata → ours: promptTokenCount already includes cached tokens (cachedContentTokenCount is
    /// the cached part); tool-use prompt tokens are input too; thinking tokens are billed as output.
    /// </summary>
    internal static TokenUsage? ReadUsage(JsonElement usage)
    {
        if (Long(usage, "promptTokenCount"u8) is not { } prompt) return null;
        var toolPrompt = Long(usage, "toolUsePromptTokenCount"u8) ?? 0;
        var completion = (Long(usage, "candidatesTokenCount"u8) ?? 0) + (Long(usage, "thoughtsTokenCount"u8) ?? 0);
        var cached = Long(usage, "cachedContentTokenCount"u8) ?? 0;
        return new TokenUsage(prompt + toolPrompt, completion, cached);
    }

    public override ChatStreamTranslator CreateStreamTranslator(ChatCall call) => new Translator(call);

    /// <summary><c>{"error":{"code":400,"message":"…","status":"INVALID_ARGUMENT"}}</c> (or that object inside a one-element array) → the message.</summary>
    public override string? ReadErrorMessage(ReadOnlySpan<byte> body)
    {
        try
        {
            using var document = ParseDocument(body);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Array && root.GetArrayLength() > 0) root = root[0];
            return Property(Property(root, "error"u8), "message"u8) is { ValueKind: JsonValueKind.String } m ? m.GetString() : null;
        }
        catch (UpstreamProtocolException)
        {
            return null;
        }
    }

    /// <summary>
    /// Each event is a whole GenerateContentResponse: its text parts become content deltas and its
    /// functionCall parts whole tool calls (Gemini sends a call in one piece). usageMetadata is
    /// cumulative (the last one wins). There is no end marker: a candidate's finishReason says the
    /// answer is complete, and the usage chunk and [DONE] follow when the upstream closes the stream.
    /// </summary>
    internal sealed class Translator(ChatCall call) : ChatStreamTranslator(call)
    {
        private CandidateState[] _candidates = [];
        private bool _ended;

        private struct CandidateState
        {
            public bool Started;
            public int ToolCalls;
        }

        public override void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output)
        {
            if (Finished) return;
            using var document = ParseDocument(data);
            var root = document.RootElement;
            if (Property(root, "error"u8) is { ValueKind: JsonValueKind.Object } error)
            {
                var message = Property(error, "message"u8) is { ValueKind: JsonValueKind.String } m ? m.GetString()! : "The upstream provider failed mid-stream.";
                var code = Property(error, "status"u8) is { ValueKind: JsonValueKind.String } s ? s.GetString() : null;
                output.WriteErrorAndDone(message, "server_error", code);
                Finished = Failed = true;
                return;
            }
            var usageMetadata = Property(root, "usageMetadata"u8);
            if (ReadUsage(usageMetadata) is { } usage)
            {
                Usage = usage;
                // Thoughts are billed as output but their text is not sent (no includeThoughts): our count adds them.
                UnseenReasoningTokens = Long(usageMetadata, "thoughtsTokenCount"u8) ?? UnseenReasoningTokens;
            }

            var any = false;
            if (Property(root, "candidates"u8) is { ValueKind: JsonValueKind.Array } candidates)
            {
                var position = 0;
                foreach (var candidate in candidates.EnumerateArray())
                {
                    any = true;
                    var index = Long(candidate, "index"u8) is { } i and < 128 ? (int)i : position;
                    position++;
                    OnCandidate(index, candidate, output);
                }
            }
            if (!any && Property(Property(root, "promptFeedback"u8), "blockReason"u8).ValueKind == JsonValueKind.String)
            {
                ref var state = ref State(0);
                if (!state.Started) WriteRoleChunk(output, Call, 0);
                state.Started = true;
                WriteFinishChunk(output, Call, 0, "content_filter");
                _ended = true;
            }
        }

        private void OnCandidate(int index, JsonElement candidate, SseWriter output)
        {
            ref var state = ref State(index);
            if (!state.Started)
            {
                WriteRoleChunk(output, Call, index);
                state.Started = true;
            }
            foreach (var part in PartsOf(candidate))
            {
                if (IsThought(part)) continue;
                if (Property(part, "text"u8) is { ValueKind: JsonValueKind.String } text)
                {
                    if (StringBytes(text) == 0) continue;
                    CountText(text);
                    WriteContentChunk(output, Call, index, text);
                }
                else if (Property(part, "functionCall"u8) is { ValueKind: JsonValueKind.Object } functionCall)
                {
                    var arguments = Property(functionCall, "args"u8) is { ValueKind: JsonValueKind.Object } args ? args.GetRawText() : "{}";
                    CountText(Property(functionCall, "name"u8));
                    CountText(arguments);
                    output.WriteJson((Call, index, tool: state.ToolCalls++, name: Property(functionCall, "name"u8), arguments), static (w, s) =>
                    {
                        BeginChoiceChunk(w, s.Call, s.index);
                        w.WriteStartArray("tool_calls"u8);
                        w.WriteStartObject();
                        w.WriteNumber("index"u8, s.tool);
                        w.WriteString("id"u8, NewToolCallId());
                        w.WriteString("type"u8, "function"u8);
                        w.WriteStartObject("function"u8);
                        w.WritePropertyName("name"u8);
                        WriteRawString(w, s.name);
                        w.WriteString("arguments"u8, s.arguments);
                        w.WriteEndObject();
                        w.WriteEndObject();
                        w.WriteEndArray();
                        EndChoiceChunk(w, null);
                    });
                }
            }
            var finishReason = Property(candidate, "finishReason"u8);
            if (finishReason.ValueKind == JsonValueKind.String)
            {
                WriteFinishChunk(output, Call, index, FinishReason(finishReason, state.ToolCalls > 0));
                _ended = true;
            }
        }

        private ref CandidateState State(int index)
        {
            if (index >= _candidates.Length) Array.Resize(ref _candidates, index + 1);
            return ref _candidates[index];
        }

        public override void Complete(SseWriter output)
        {
            if (Finished) return;
            if (!_ended) return;   // closed before any finishReason: cut off; the relay reports it and bills what went out
            WriteEnd(output, Call, BillableUsage(endedCleanly: true));   // the usage chunk shows what is billed
            Finished = true;
        }
    }
}
