using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.Extensions.Options;
using static AiGate.Web.Features.Providers.ChatTranslation;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/responses</c>, OpenAI's Responses API, through the same admission, reservation, relay, settlement,
/// checkpoints and drain as chat (<see cref="GenerationPipeline"/>, <see cref="StreamRelay"/>). A route whose provider
/// serves the Responses API (<see cref="Provider.SupportsResponses"/>) gets the client's body with the model rewritten,
/// <c>store</c> false and the output limit the reservation covers, and its answer passes through (the JSON with our model
/// name and the usage billed, with its cost; the stream untouched, billed from response.completed). Other routes get the
/// request translated into the internal chat call and their answer translated back (<see cref="ResponsesTranslation"/>,
/// <see cref="ResponseEventWriter"/>). We keep no responses: <c>previous_response_id</c>, <c>store: true</c>,
/// <c>background</c> and <c>conversation</c> are refused with a 400 naming the parameter, and so is the retrieval of one.
/// </summary>
public sealed class ResponsesEndpoint(GatewayAdmission admission, GenerationPipeline pipeline, StreamRelay relay, IOptions<GatewayOptions> options)
{
    /// <summary>OpenAI's smallest <c>max_output_tokens</c>.</summary>
    private const int MinOutputTokens = 16;
    private static readonly string[] Roles = ["user", "assistant", "system", "developer"];
    private static readonly string[] FunctionCallFields = ["call_id", "name", "arguments"];
    private static readonly PassthroughRoute OpenAiResponsesRoute = new("responses", null, AllowsStream: true, Embeddings: false);
    private readonly GatewayOptions _options = options.Value;

    private sealed record ResponsesCall(JsonObject Request, ChatCall Call, TranslatedResponses Translated);

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadObjectAsync(context, _options.MaxRequestBytes) is not var (body, _)) return;
        var responses = await ValidateAsync(context, key, body);
        if (responses is null) return;
        var call = responses.Call;
        await pipeline.RunAsync(context, key, call, started,
            (provider, upstreamModel, apiKey) => CreateRequest(provider, responses, upstreamModel, apiKey),
            async (route, checkpoint) =>
            {
                var native = route.Provider!.SupportsResponses;
                if (!call.Stream) return await RelayJsonAsync(context, responses, route, started, native);
                var translator = native ? new ResponsesPassthrough(call) : route.Provider.Adapter.CreateStreamTranslator(call);   // the relay disposes it
                var writer = new SseWriter(new ResponseEventWriter(context.Response.BodyWriter, responses.Request, call, native));
                return await relay.RelayAsync(context, call, route, started, checkpoint, translator, writer);
            });
    }

    /// <summary><c>GET</c>, <c>DELETE</c> <c>/responses/{id}</c> and its cancel and input_items: there is nothing stored to act on.</summary>
    public static Task NotStoredAsync(HttpContext context) => ApiErrors.InvalidRequestAsync(context,
        "AiGate does not store responses, so a response cannot be retrieved, cancelled or deleted: keep the object the create call returned.",
        "response_id", "response_not_stored");

    /// <summary>The upstream request: the Responses body itself where the provider serves it, else the translated chat call (null: skip the route).</summary>
    private static HttpRequestMessage? CreateRequest(Provider provider, ResponsesCall responses, string upstreamModel, string? apiKey)
    {
        if (!provider.SupportsResponses)
            return responses.Translated.Untranslatable is null ? provider.Adapter.CreateChatRequest(provider, responses.Call, upstreamModel, apiKey) : null;
        var body = (JsonObject)responses.Request.DeepClone();
        body["model"] = upstreamModel;
        body["store"] = false;   // nothing is kept upstream under the platform's key either
        body["max_output_tokens"] = responses.Call.MaxOutputTokens;   // the reserved worst case bounds the cost (RELIABILITY L9)
        return OpenAiAdapter.Post(provider, "responses", body, responses.Call.Stream, apiKey);
    }

    private async Task<ResponsesCall?> ValidateAsync(HttpContext context, KeyIdentity key, JsonObject body)
    {
        var modelName = RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "model");
            return null;
        }
        if (await CheckShapeAsync(context, body) is not { Value: var maxOutput }) return null;
        if (!RequestBody.OptionalBool(body, "stream", out var stream, out error)
            || !RequestBody.OptionalNumber(body, "temperature", 0, 2, out error)
            || !RequestBody.OptionalNumber(body, "top_p", 0, 1, out error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!, ApiErrors.ParamOf(error!));
            return null;
        }

        if (await pipeline.ResolveChatModelAsync(context, key, modelName) is not { } model) return null;
        if (maxOutput > model.MaxOutputTokens)
        {
            await ApiErrors.InvalidRequestAsync(context, $"Invalid 'max_output_tokens': `{model.Id}` writes at most {model.MaxOutputTokens} tokens.", "max_output_tokens");
            return null;
        }
        // What OpenAI would bill outside the usage we read (hosted tools priced per call) is refused before anything is
        // reserved or sent, by the pass-through's own rules; a translated route cannot carry those tools anyway.
        if (HasNativeRoute(model) && PassthroughRules.Unpriceable(ProviderKind.OpenAi, OpenAiResponsesRoute, body, null, "on /api/v1/responses") is { } unpriced)
        {
            await ApiErrors.InvalidRequestAsync(context, unpriced, null, "unsupported_parameter");
            return null;
        }
        var translated = ResponsesTranslation.ToChat(body);
        if (translated.Untranslatable is { } what && !HasNativeRoute(model))
        {
            await ApiErrors.InvalidRequestAsync(context,
                $"`{model.Id}` is served by a provider without OpenAI's Responses API, and {what} cannot be translated for it.", null, "unsupported_parameter");
            return null;
        }
        var maxOutputTokens = (int)(maxOutput ?? Math.Min(model.MaxOutputTokens, pipeline.DefaultMaxOutputTokens));
        var tokenizer = TokenCounter.For(model);
        var call = new ChatCall
        {
            Body = translated.ChatBody,
            Model = model,
            Tokenizer = tokenizer,
            PromptTokens = tokenizer.CountPrompt(translated.ChatBody),
            Stream = stream,
            ClientWantsUsage = true,   // translated streams end with the usage chunk that response.completed reports
            CompletionIdPrefix = "resp_",
            Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            MaxOutputTokens = maxOutputTokens,
            ClientSetMaxTokens = maxOutput is not null,
            OutputBound = maxOutputTokens,
            Choices = 1,
            MediaTokensBound = (long)translated.Images * _options.ImagePartWorstCaseTokens + (long)translated.Files * _options.AudioOrFilePartWorstCaseTokens,
        };
        return new ResponsesCall(body, call, translated);
    }

    private bool HasNativeRoute(ResolvedModel model)
    {
        foreach (var provider in pipeline.Providers(model))
            if (provider.SupportsResponses) return true;
        return false;
    }

    /// <summary>
    /// What the Responses API requires, and what needs a stored response, refused with the parameter named: input (a string
    /// or a non-empty array of items), message roles and typed content parts, instructions, tools, text.format, metadata,
    /// max_output_tokens. Returns the client's max_output_tokens (its value null when none), or null after writing the 400.
    /// </summary>
    private static async Task<OutputLimit?> CheckShapeAsync(HttpContext context, JsonObject body)
    {
        foreach (var (name, why) in new[]
                 {
                     ("previous_response_id", "AiGate does not store responses, so 'previous_response_id' cannot continue one: send the whole conversation in 'input'."),
                     ("conversation", "AiGate does not store conversations: send the whole conversation in 'input'."),
                 })
        {
            if (body[name] is { } value && value.GetValueKind() != JsonValueKind.Null)
            {
                await ApiErrors.InvalidRequestAsync(context, why, name, "unsupported_parameter");
                return null;
            }
        }
        foreach (var (name, why) in new[]
                 {
                     ("store", "AiGate does not store responses: leave 'store' out or set it to false."),
                     ("background", "Background responses need a stored response to poll, and AiGate does not store responses: leave 'background' out."),
                 })
        {
            if (!RequestBody.OptionalBool(body, name, out var set, out var error))
            {
                await ApiErrors.InvalidRequestAsync(context, error!, name);
                return null;
            }
            if (set)
            {
                await ApiErrors.InvalidRequestAsync(context, why, name, "unsupported_parameter");
                return null;
            }
        }
        if (!RequestBody.OptionalInt(body, "max_output_tokens", MinOutputTokens, int.MaxValue, out var maxOutput, out var invalid))
        {
            await ApiErrors.InvalidRequestAsync(context, invalid!, "max_output_tokens");
            return null;
        }
        if (await InputErrorAsync(context, body["input"])) return null;
        if (body["instructions"] is { } instructions && instructions.GetValueKind() is not (JsonValueKind.String or JsonValueKind.Null))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid type for 'instructions': expected a string.", "instructions");
            return null;
        }
        if (body["tools"] is { } tools && (tools is not JsonArray list || !AllTyped(list)))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'tools': expected an array of tools, each an object with a 'type'.", "tools");
            return null;
        }
        if (body["tool_choice"] is { } choice && choice.GetValueKind() is not (JsonValueKind.String or JsonValueKind.Object or JsonValueKind.Null))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid type for 'tool_choice': expected a string or an object.", "tool_choice");
            return null;
        }
        if (body["text"] is { } text && text.GetValueKind() != JsonValueKind.Null
            && (text is not JsonObject textObject || textObject["format"] is { } format && (format is not JsonObject f || Str(f["type"]) is null)))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'text': expected an object like {\"format\": {\"type\": \"text\"}}.", "text");
            return null;
        }
        if (body["metadata"] is { } metadata && metadata.GetValueKind() != JsonValueKind.Null && !StringMap(metadata))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'metadata': expected an object of at most 16 string values.", "metadata");
            return null;
        }
        return new OutputLimit(maxOutput);
    }

    private readonly record struct OutputLimit(long? Value);

    /// <summary>Writes the 400 for an input that is not a string or a non-empty array of well-formed items; true when it did.</summary>
    private static async Task<bool> InputErrorAsync(HttpContext context, JsonNode? input)
    {
        switch (input)
        {
            case null:
                await ApiErrors.InvalidRequestAsync(context, "Missing required parameter: 'input'.", "input");
                return true;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return false;
            case JsonArray { Count: > 0 } items:
                for (var i = 0; i < items.Count; i++)
                {
                    if (ItemError(items[i], $"input[{i}]") is not { } wrong) continue;
                    await ApiErrors.InvalidRequestAsync(context, wrong.Item1, wrong.Item2);
                    return true;
                }
                return false;
            default:
                await ApiErrors.InvalidRequestAsync(context, "Invalid 'input': expected a string or a non-empty array of input items.", "input");
                return true;
        }
    }

    /// <summary>What is wrong with one input item (message, parameter), or null.</summary>
    private static (string, string)? ItemError(JsonNode? node, string at)
    {
        if (node is not JsonObject item || ResponsesTranslation.ItemType(item) is not { } type)
            return ($"Invalid '{at}': expected an input item, an object with a 'type' (or a message with a 'role').", at);
        switch (type)
        {
            case "message":
                if (Str(item["role"]) is not { } role || !Roles.Contains(role))
                    return ($"Invalid value for '{at}.role': expected one of {string.Join(", ", Roles)}.", $"{at}.role");
                switch (item["content"])
                {
                    case JsonValue text when text.GetValueKind() == JsonValueKind.String:
                        return null;
                    case JsonArray parts:
                        for (var j = 0; j < parts.Count; j++)
                            if (PartError(parts[j]) is { } why) return ($"Invalid '{at}.content[{j}]': {why}", $"{at}.content[{j}]");
                        return null;
                    default:
                        return ($"Invalid type for '{at}.content': expected a string or an array of content parts.", $"{at}.content");
                }
            case "function_call":
                foreach (var field in FunctionCallFields)
                    if (Str(item[field]) is null) return ($"Invalid '{at}.{field}': a function_call item needs a string '{field}'.", $"{at}.{field}");
                return null;
            case "function_call_output":
                if (Str(item["call_id"]) is null) return ($"Invalid '{at}.call_id': a function_call_output item needs a string 'call_id'.", $"{at}.call_id");
                if (item["output"] is not (JsonValue or JsonArray)) return ($"Invalid '{at}.output': expected a string.", $"{at}.output");
                return null;
            default:
                return null;   // other item types: passed to a native route, or named by the translation
        }
    }

    private static string? PartError(JsonNode? node)
    {
        if (node is not JsonObject part || Str(part["type"]) is not { } type) return "expected a content part, an object with a 'type'.";
        return type switch
        {
            "input_text" or "output_text" when Str(part["text"]) is null => $"an {type} part needs a string 'text'.",
            "input_image" when Str(part["image_url"]) is null && Str(part["file_id"]) is null => "an input_image part needs an 'image_url' or a 'file_id'.",
            _ => null,
        };
    }

    private static bool AllTyped(JsonArray items)
    {
        foreach (var item in items)
            if (item is not JsonObject o || Str(o["type"]) is null) return false;
        return true;
    }

    private static bool StringMap(JsonNode metadata)
    {
        if (metadata is not JsonObject map || map.Count > 16) return false;
        foreach (var (_, value) in map)
            if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.String) return false;
        return true;
    }

    /// <summary>
    /// A whole answer, billed by the chat rules (<see cref="ChatBilling.Billable"/>). Native: the provider's response with
    /// our model name and its usage as billed, with the cost; translated: the response object built from the chat answer.
    /// </summary>
    private async ValueTask<TokenUsage?> RelayJsonAsync(HttpContext context, ResponsesCall responses, RouteResult route, long started, bool native)
    {
        var call = responses.Call;
        var result = await pipeline.ReadAnswerAsync(context, route, (call, route.Provider!.Adapter, native), static (bytes, s) =>
        {
            if (!s.native) return s.Adapter.ReadChatCompletion(bytes, s.call);
            var response = OpenAiAdapter.ParseObject(bytes);
            return ResponsesTranslation.ForBilling(response) with { Response = response };
        });
        if (result is null) return null;
        JsonObject answer;
        TokenUsage usage;
        if (native)
        {
            answer = result.Response;
            usage = ChatBilling.Billable(call, ResponsesTranslation.ForBilling(answer));
            answer["model"] = call.Model.Id;
            var reported = answer["usage"] as JsonObject ?? [];
            var billed = ResponsesTranslation.Usage(usage, call.Pricing.CostMicros(usage));
            billed["output_tokens_details"] = reported["output_tokens_details"]?.DeepClone() ?? billed["output_tokens_details"]!.DeepClone();
            answer["usage"] = billed;
        }
        else
        {
            usage = ChatBilling.Billable(call, result);
            answer = ResponsesTranslation.ToResponse(responses.Request, result.Response, call, usage, call.Pricing.CostMicros(usage));
        }
        await pipeline.WriteAnswerAsync(context, call, route, started, call.Pricing.CostMicros(usage), answer);
        return usage;
    }
}
