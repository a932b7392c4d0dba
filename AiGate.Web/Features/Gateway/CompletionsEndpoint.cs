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
/// <c>POST /api/v1/completions</c>, OpenAI's legacy text completions, for OpenAI-kind routes (OpenAI's instruct models and
/// the OpenAI-compatible servers that keep the endpoint) and echo. The body is forwarded with the upstream model, an
/// explicit <c>max_tokens</c> (OpenAI's default of 16 when the client sets none, so the reservation bounds the cost) and,
/// for streams, <c>stream_options.include_usage</c>; the answer comes back as for chat (<c>text_completion</c> JSON with the
/// usage billed and its cost, or its chunks relayed by the chat translator). The reservation covers every generated choice:
/// each prompt of an array times the larger of <c>n</c> and <c>best_of</c>. Anthropic and Gemini have no such endpoint,
/// and a prompt is not a conversation, so their models are refused with a 400 pointing at /chat/completions.
/// </summary>
public sealed class CompletionsEndpoint(GatewayAdmission admission, GenerationPipeline pipeline, StreamRelay relay, IOptions<GatewayOptions> options)
{
    /// <summary>OpenAI's documented default <c>max_tokens</c> of a legacy completion.</summary>
    private const int DefaultMaxTokens = 16;
    private readonly GatewayOptions _options = options.Value;

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadObjectAsync(context, _options.MaxRequestBytes) is not var (body, _)) return;
        var call = await ValidateAsync(context, key, body);
        if (call is null) return;
        await pipeline.RunAsync(context, key, call, started,
            (provider, upstreamModel, apiKey) => CreateRequest(provider, call, upstreamModel, apiKey),
            async (route, checkpoint) =>
            {
                if (!call.Stream) return await RelayJsonAsync(context, call, route, started);
                var translator = route.Provider!.Adapter.CreateStreamTranslator(call);   // the relay disposes it
                return await relay.RelayAsync(context, call, route, started, checkpoint, translator, new SseWriter(context.Response.BodyWriter));
            });
    }

    private static bool Serves(Provider provider) => provider.Kind is ProviderKind.OpenAi or ProviderKind.Echo;

    private static HttpRequestMessage? CreateRequest(Provider provider, ChatCall call, string upstreamModel, string? apiKey)
    {
        if (!Serves(provider)) return null;
        var body = call.Body;
        body["model"] = upstreamModel;
        body["max_tokens"] = call.MaxOutputTokens;
        if (call.Stream)
        {
            var streamOptions = body["stream_options"] as JsonObject ?? [];
            streamOptions["include_usage"] = true;
            body["stream_options"] = streamOptions;
        }
        return OpenAiAdapter.Post(provider, "completions", body, call.Stream, apiKey);
    }

    private async Task<ChatCall?> ValidateAsync(HttpContext context, KeyIdentity key, JsonObject body)
    {
        var modelName = RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "model");
            return null;
        }
        if (Prompts(body["prompt"]) is not { } prompts)
        {
            await ApiErrors.InvalidRequestAsync(context, body["prompt"] is null
                ? "Missing required parameter: 'prompt'."
                : "Invalid 'prompt': expected a string or a non-empty array of strings (token arrays are not supported).", "prompt");
            return null;
        }
        if (!RequestBody.OptionalBool(body, "stream", out var stream, out error)
            || !RequestBody.OptionalBool(body, "echo", out _, out error)
            || !RequestBody.OptionalInt(body, "max_tokens", 1, int.MaxValue, out var maxTokens, out error)
            || !RequestBody.OptionalInt(body, "n", 1, 128, out var n, out error)
            || !RequestBody.OptionalInt(body, "best_of", 1, 20, out var bestOf, out error)
            || !RequestBody.OptionalInt(body, "logprobs", 0, 5, out _, out error)
            || !RequestBody.OptionalNumber(body, "temperature", 0, 2, out error)
            || !RequestBody.OptionalNumber(body, "top_p", 0, 1, out error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!, ApiErrors.ParamOf(error!));
            return null;
        }
        if (bestOf < n)
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'best_of': it must be at least 'n'.", "best_of");
            return null;
        }
        if (stream && bestOf > 1)
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'best_of': it cannot be used with stream.", "best_of");
            return null;
        }
        var wantsUsage = false;
        if (body["stream_options"] is { } streamOptions
            && (streamOptions is not JsonObject so || !RequestBody.OptionalBool(so, "include_usage", out wantsUsage, out _)))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid 'stream_options': expected an object like {\"include_usage\": true}.", "stream_options");
            return null;
        }
        if (body["suffix"] is { } suffix && suffix.GetValueKind() is not (JsonValueKind.String or JsonValueKind.Null))
        {
            await ApiErrors.InvalidRequestAsync(context, "Invalid type for 'suffix': expected a string.", "suffix");
            return null;
        }

        if (await pipeline.ResolveChatModelAsync(context, key, modelName) is not { } model) return null;
        if (!HasServingRoute(model))
        {
            await ApiErrors.InvalidRequestAsync(context,
                $"`{model.Id}` does not support the legacy completions endpoint (its providers serve chat only): use /api/v1/chat/completions.", "model", "model_not_supported");
            return null;
        }
        if (maxTokens > model.MaxOutputTokens)
        {
            await ApiErrors.InvalidRequestAsync(context, $"Invalid 'max_tokens': `{model.Id}` writes at most {model.MaxOutputTokens} tokens.", "max_tokens");
            return null;
        }

        var tokenizer = TokenCounter.For(model);
        long promptTokens = tokenizer.Count(Str(body["suffix"]));
        foreach (var prompt in prompts) promptTokens += tokenizer.Count(prompt);
        var output = (int)(maxTokens ?? Math.Min(DefaultMaxTokens, model.MaxOutputTokens));
        // best_of completions are generated (and billed) upstream, n of them returned: every prompt gets the larger.
        var generated = Math.Max(n ?? 1, bestOf ?? 1) * prompts.Count;
        return new ChatCall
        {
            Body = body,
            Model = model,
            Tokenizer = tokenizer,
            PromptTokens = promptTokens,
            Stream = stream,
            ClientWantsUsage = wantsUsage,
            CompletionIdPrefix = "cmpl-",
            Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            MaxOutputTokens = output,
            ClientSetMaxTokens = true,
            OutputBound = (long)output * generated,
            Choices = (int)(n ?? 1) * prompts.Count,
            MediaTokensBound = 0,
        };
    }

    /// <summary>The prompt as strings: one string, or a non-empty array of strings; null for anything else (token arrays included).</summary>
    private static List<string>? Prompts(JsonNode? prompt)
    {
        if (Str(prompt) is { } single) return [single];
        if (prompt is not JsonArray { Count: > 0 } items) return null;
        var prompts = new List<string>(items.Count);
        foreach (var item in items)
        {
            if (Str(item) is not { } text) return null;
            prompts.Add(text);
        }
        return prompts;
    }

    private bool HasServingRoute(ResolvedModel model)
    {
        foreach (var provider in pipeline.Providers(model))
            if (Serves(provider)) return true;
        return false;
    }

    /// <summary>A whole <c>text_completion</c>: billed by the chat rules (its choices' text counted), passed on with our model name and the usage billed.</summary>
    private async ValueTask<TokenUsage?> RelayJsonAsync(HttpContext context, ChatCall call, RouteResult route, long started)
    {
        if (await pipeline.ReadAnswerAsync(context, route, (call, route.Provider!.Adapter), static (bytes, s) => s.Adapter.ReadChatCompletion(bytes, s.call))
            is not { } result) return null;
        var usage = ChatBilling.Billable(call, result);
        var cost = call.Pricing.CostMicros(usage);
        result.Response["usage"] = UsageJson.Create(usage, cost);
        await pipeline.WriteAnswerAsync(context, call, route, started, cost, result.Response);
        return usage;
    }
}
