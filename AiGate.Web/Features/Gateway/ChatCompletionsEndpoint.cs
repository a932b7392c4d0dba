using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/chat/completions</c>: authenticate, validate, resolve the model, route to a
/// provider, relay the answer (JSON, or server-sent events as they arrive), report usage and cost.
/// </summary>
public sealed class ChatCompletionsEndpoint(GatewayAdmission admission, GenerationPipeline pipeline, IOptions<GatewayOptions> options, StreamRelay relay)
{
    private static readonly string[] Roles = ["system", "developer", "user", "assistant", "tool", "function"];
    private readonly GatewayOptions _options = options.Value;

    private static readonly PassthroughRoute ChatRoute = new("chat/completions", null, AllowsStream: true, Embeddings: false);

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadDocumentAsync(context, _options.MaxRequestBytes) is not { } request) return;
        var call = await ValidateAsync(context, key, request);
        if (call is null) return;
        // The call's state goes along as a value, the two steps are static: no closure or delegate is made per call (issue 16).
        await pipeline.RunAsync(context, key, call, started, (Endpoint: this, context, call, started),
            static (s, provider, upstreamModel, apiKey) =>
                s.call.Choices > 1 && !provider.Adapter.SupportsChoices ? null : provider.Adapter.CreateChatRequest(provider, s.call, upstreamModel, apiKey),
            static (s, route, checkpoint) => s.Endpoint.RelayAsync(s.context, s.call, route, s.started, checkpoint));
    }

    /// <summary>Not async itself: an open stream keeps the relay's state and no second one of its own (issue 16).</summary>
    private ValueTask<TokenUsage?> RelayAsync(HttpContext context, ChatCall call, RouteResult route, long started, OpenStream? checkpoint) =>
        call.Stream
            ? new(relay.RelayAsync(context, call, route, started, checkpoint, route.Provider!.Adapter.CreateStreamTranslator(call),
                new SseWriter(context.Response.BodyWriter)))
            : RelayJsonAsync(context, call, route, started);

    private async ValueTask<ChatCall?> ValidateAsync(HttpContext context, KeyIdentity key, RequestJson request)
    {
        var body = request.Root;
        var modelName = RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "model");
            return null;
        }
        if (RequestBody.Field(body, "messages") is not { ValueKind: JsonValueKind.Array } messages || messages.GetArrayLength() == 0)
        {
            await ApiErrors.InvalidRequestAsync(context, RequestBody.Field(body, "messages") is null
                ? "Missing required parameter: 'messages'."
                : "Invalid 'messages': expected a non-empty array of messages.", "messages");
            return null;
        }
        var i = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("role"u8, out var role) || !IsRole(role))
            {
                await ApiErrors.InvalidRequestAsync(context,
                    $"Invalid 'messages[{i}]': each message must be an object with a 'role' of {string.Join(", ", Roles)}.", $"messages[{i}].role");
                return null;
            }
            i++;
        }
        if (!RequestBody.OptionalBool(body, "stream", out var stream, out error)
            || !RequestBody.OptionalInt(body, "max_tokens", 1, int.MaxValue, out var maxTokens, out error)
            || !RequestBody.OptionalInt(body, "max_completion_tokens", 1, int.MaxValue, out var maxCompletionTokens, out error)
            || !RequestBody.OptionalInt(body, "n", 1, 128, out var n, out error)
            || !RequestBody.OptionalNumber(body, "temperature", 0, 2, out error)
            || !RequestBody.OptionalNumber(body, "top_p", 0, 1, out error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!, ApiErrors.ParamOf(error!));
            return null;
        }
        var wantsUsage = false;
        if (RequestBody.Field(body, "stream_options") is { } streamOptions)
        {
            if (streamOptions.ValueKind != JsonValueKind.Object || !RequestBody.OptionalBool(streamOptions, "include_usage", out wantsUsage, out _))
            {
                await ApiErrors.InvalidRequestAsync(context, "Invalid 'stream_options': expected an object like {\"include_usage\": true}.", "stream_options");
                return null;
            }
        }

        // What OpenAI prices outside the usage we bill from (its priority tier, per-call web search) is refused
        // before anything is reserved, by the same rules as the pass-through and /responses.
        JsonObject? nodes = null;
        if (PassthroughRules.OpenAiRulesApply(body))
        {
            nodes = (JsonObject)JsonNode.Parse(request.Bytes.Span)!;
            if (PassthroughRules.Unpriceable(ProviderKind.OpenAi, ChatRoute, nodes, null, "on /api/v1/chat/completions") is { } unpriced)
            {
                await ApiErrors.InvalidRequestAsync(context, unpriced, ApiErrors.ParamOf(unpriced));
                return null;
            }
        }
        if (await pipeline.ResolveChatModelAsync(context, key, modelName) is not { } model) return null;
        // Both limits are checked (an OpenAI-compatible server may honour either); the one forwarded to
        // translated providers is OpenAI's rule, max_completion_tokens first, and the reservation covers the larger.
        var tooMany = maxCompletionTokens > model.MaxOutputTokens ? "max_completion_tokens" : maxTokens > model.MaxOutputTokens ? "max_tokens" : null;
        if (tooMany is not null)
        {
            await ApiErrors.InvalidRequestAsync(context, $"Invalid '{tooMany}': `{model.Id}` writes at most {model.MaxOutputTokens} tokens.", tooMany);
            return null;
        }
        var choices = (int)(n ?? 1);
        if (choices > 1 && !HasRouteWithChoices(model))
        {
            await ApiErrors.InvalidRequestAsync(context, $"Invalid 'n': `{model.Id}` answers with one choice per request; send n = 1 or leave it out.", "n");
            return null;
        }
        var requested = maxCompletionTokens ?? maxTokens;
        var maxOutput = (int)(requested ?? Math.Min(model.MaxOutputTokens, pipeline.DefaultMaxOutputTokens));
        var mediaTokens = MediaTokens(messages);

        var tokenizer = TokenCounter.For(model);
        return new ChatCall
        {
            Request = request,
            ParsedBody = nodes,
            Model = model,
            Tokenizer = tokenizer,
            PromptTokens = tokenizer.CountPrompt(body),
            Stream = stream,
            ClientWantsUsage = wantsUsage,
            Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            MaxOutputTokens = maxOutput,
            ClientSetMaxTokens = requested is not null,
            OutputBound = Math.Max(maxOutput, Math.Max(maxTokens ?? 0, maxCompletionTokens ?? 0)) * (long)choices,
            Choices = choices,
            MediaTokensBound = mediaTokens,
        };
    }

    private static bool IsRole(JsonElement role)
    {
        if (role.ValueKind != JsonValueKind.String) return false;
        foreach (var name in Roles)
            if (role.ValueEquals(name)) return true;
        return false;
    }

    private bool HasRouteWithChoices(ResolvedModel model)
    {
        foreach (var provider in pipeline.Providers(model))
            if (provider.Adapter.SupportsChoices) return true;
        return false;
    }

    /// <summary>
    /// The fixed worst case of the messages' image, audio and file parts: their bytes (a URL, or base64
    /// data) say nothing about what the provider will count, and the prompt's token count leaves them out.
    /// </summary>
    private long MediaTokens(JsonElement messages)
    {
        long tokens = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (!message.TryGetProperty("content"u8, out var parts) || parts.ValueKind != JsonValueKind.Array) continue;
            foreach (var part in parts.EnumerateArray())
            {
                if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String) continue;
                if (type.ValueEquals("image_url"u8)) tokens += _options.ImagePartWorstCaseTokens;
                else if (type.ValueEquals("input_audio"u8) || type.ValueEquals("file"u8)) tokens += _options.AudioOrFilePartWorstCaseTokens;
            }
        }
        return tokens;
    }

    /// <summary>Relays a JSON answer with the usage billed and its cost; returns the usage to bill (null: nothing billable was produced).</summary>
    private async ValueTask<TokenUsage?> RelayJsonAsync(HttpContext context, ChatCall call, RouteResult route, long started)
    {
        // OpenAI's format is relayed as its own bytes with model and usage replaced (no DOM); others are translated.
        var answer = await pipeline.ReadAnswerAsync(context, route, (call, route.Provider!.Adapter), static (bytes, s) =>
        {
            if (s.Adapter.TrySplice(bytes) is { } splice) return new JsonAnswer(splice, null, ChatBilling.Billable(s.call, splice));
            var result = s.Adapter.ReadChatCompletion(bytes, s.call);
            return new JsonAnswer(null, result, ChatBilling.Billable(s.call, result));
        });
        if (answer is null) return null;
        var usage = answer.Usage;
        var cost = call.Pricing.CostMicros(usage);
        if (answer.Splice is { } spliced)
            await pipeline.WriteAnswerAsync(context, call, route, started, cost, (spliced, call.Model.Id, usage, cost),
                static (output, s) => s.spliced.WriteTo(output, s.Id, s.usage, s.cost));
        else
        {
            answer.Result!.Response["usage"] = UsageJson.Create(usage, cost);
            await pipeline.WriteAnswerAsync(context, call, route, started, cost, answer.Result.Response);
        }
        return usage;
    }

    /// <summary>A read JSON answer: spliced (OpenAI's format, relayed as its bytes) or parsed, and the usage it is billed.</summary>
    private sealed record JsonAnswer(OpenAiCompletionSplice? Splice, ChatCompletionResult? Result, TokenUsage Usage);
}
