using System.Buffers;
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
/// <c>POST /api/v1/messages</c>, Anthropic's Messages API (its SDKs, given <c>base_url = http://host/api</c>, call
/// exactly this path), and <c>POST /api/v1/messages/count_tokens</c>. The key comes in <c>x-api-key</c> or as a
/// bearer token; <c>anthropic-version</c> is accepted and not required (upstream calls always use 2023-06-01). Every
/// error is in Anthropic's envelope. The call goes through the chat endpoint's machinery in the same order
/// (admission, body limit, validation, stream slot, token limit, reservation, routing, relay, settlement, usage
/// row, checkpoints, drain, shutdown). Anthropic routes get the client's Messages body (model rewritten) and their
/// answer passes through as sent; other routes get it translated into the internal chat call, and their answer
/// translated back (<see cref="MessagesTranslation"/>, <see cref="MessageEventWriter"/>).
/// </summary>
public sealed class MessagesEndpoint(
    GatewayAdmission admission, ApiKeyAuthenticator authenticator, GenerationPipeline pipeline, RateLimits rateLimits, IOptions<GatewayOptions> options,
    StreamRelay relay)
{
    private const string UpstreamAnthropicVersion = "2023-06-01";
    /// <summary>count_tokens' estimate of an image: Anthropic's own cap for an image it has resized (about 1.15 megapixels ÷ 750).</summary>
    private const int CountedImageTokens = 1_600;
    private static readonly PassthroughRoute AnthropicMessagesRoute = new("v1/messages", null, AllowsStream: true, Embeddings: false);
    private readonly GatewayOptions _options = options.Value;

    private sealed record MessagesCall(JsonObject Request, ChatCall Call, TranslatedMessages Translated);

    public async Task HandleAsync(HttpContext context)
    {
        ApiErrors.UseAnthropicEnvelope(context);
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context, anthropicKey: true);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadObjectAsync(context, _options.MaxRequestBytes) is not var (body, _)) return;
        var messages = await ValidateAsync(context, key, body, counting: false);
        if (messages is null) return;
        var call = messages.Call;
        // max_tokens is required by the Messages API, so the worst case reserved is the prompt's bound plus exactly that.
        await pipeline.RunAsync(context, key, call, started,
            (provider, upstreamModel, apiKey) => CreateRequest(context, provider, messages, upstreamModel, apiKey),
            async (route, checkpoint) =>
            {
                var provider = route.Provider!;
                var native = provider.Kind == ProviderKind.Anthropic;
                if (!call.Stream) return await RelayJsonAsync(context, call, route, started, native);
                var translator = native ? new AnthropicPassthrough(call) : provider.Adapter.CreateStreamTranslator(call);   // the relay disposes it
                var writer = native
                    ? new SseWriter(context.Response.BodyWriter, anthropicEvents: true)
                    : new SseWriter(new MessageEventWriter(context.Response.BodyWriter, call));
                return await relay.RelayAsync(context, call, route, started, checkpoint, translator, writer);
            });
    }

    /// <summary>
    /// <c>POST /api/v1/messages/count_tokens</c>: <c>{"input_tokens": N}</c> by our own count (the model's tokenizer,
    /// cl100k_base for Claude: an approximation), free, no reservation and no usage row; it counts against the
    /// request rate limit like any call.
    /// </summary>
    public async Task CountTokensAsync(HttpContext context)
    {
        ApiErrors.UseAnthropicEnvelope(context);
        var key = await authenticator.AuthenticateAnthropicAsync(context);
        if (key is null)
        {
            await ApiErrors.InvalidApiKeyAsync(context);
            return;
        }
        if (!await rateLimits.AdmitRequestAsync(context, key)) return;
        if (await RequestBody.ReadObjectAsync(context, _options.MaxRequestBytes) is not var (body, _)) return;
        var messages = await ValidateAsync(context, key, body, counting: true);
        if (messages is null) return;
        var translated = messages.Translated;
        var tokens = messages.Call.PromptTokens + (long)translated.Images * CountedImageTokens + (long)translated.Documents * _options.AudioOrFilePartWorstCaseTokens;
        context.Response.ContentType = "application/json";
        await using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteNumber("input_tokens", tokens);
            writer.WriteEndObject();
        }
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    /// <summary>The upstream request: the Messages body itself for Anthropic, the translated chat call for the rest (null: skip the route).</summary>
    private static HttpRequestMessage? CreateRequest(HttpContext context, Provider provider, MessagesCall messages, string upstreamModel, string? apiKey)
    {
        if (provider.Kind != ProviderKind.Anthropic)
            return messages.Translated.Untranslatable is null ? provider.Adapter.CreateChatRequest(provider, messages.Call, upstreamModel, apiKey) : null;
        var body = messages.Request;
        body["model"] = upstreamModel;
        return ChatTranslation.Post(provider.Url("v1/messages"), body, messages.Call.Stream, headers =>
        {
            headers.TryAddWithoutValidation("x-api-key", apiKey);
            // Pinned whatever the client sent (the .NET SDK 13.x sends 2026-10-21): 2023-06-01 is the version whose answers and
            // usage our billing reads (the same as AnthropicAdapter's), and it accepts every request a later version does.
            headers.TryAddWithoutValidation("anthropic-version", UpstreamAnthropicVersion);
            // Beta features (prompt-caching TTLs, long context…) are the client's choice; Anthropic's usage still decides the bill.
            if (context.Request.Headers["anthropic-beta"] is { Count: > 0 } beta) headers.TryAddWithoutValidation("anthropic-beta", (IEnumerable<string?>)beta);
        });
    }

    private async Task<MessagesCall?> ValidateAsync(HttpContext context, KeyIdentity key, JsonObject body, bool counting)
    {
        var modelName = RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "model");
            return null;
        }
        if (await CheckShapeAsync(context, body, counting) is not { } maxTokens) return null;
        if (!RequestBody.OptionalBool(body, "stream", out var stream, out error)
            || !RequestBody.OptionalNumber(body, "temperature", 0, 1, out error)
            || !RequestBody.OptionalNumber(body, "top_p", 0, 1, out error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!);
            return null;
        }

        if (await pipeline.ResolveChatModelAsync(context, key, modelName) is not { } model) return null;
        if (maxTokens > model.MaxOutputTokens)
        {
            await ApiErrors.InvalidRequestAsync(context, $"max_tokens: {maxTokens} > {model.MaxOutputTokens}, which is the maximum allowed number of output tokens for {model.Id}");
            return null;
        }

        // What Anthropic would bill outside the usage we read (server tools priced per call, remote MCP, the 1M-context
        // beta's higher rates) is refused before anything is reserved or sent, by the pass-through's own rules. Counting is free.
        if (!counting && HasAnthropicRoute(model)
            && PassthroughRules.Unpriceable(ProviderKind.Anthropic, AnthropicMessagesRoute, body, context.Request.Headers["anthropic-beta"].ToString(),
                "on /api/v1/messages") is { } unpriced)
        {
            await ApiErrors.InvalidRequestAsync(context, unpriced);
            return null;
        }
        var translated = MessagesTranslation.ToChat(body);
        if (translated.Untranslatable is { } what && !HasAnthropicRoute(model))
        {
            await ApiErrors.InvalidRequestAsync(context,
                $"`{model.Id}` is served by a provider that does not speak Anthropic's Messages API, and {what} cannot be translated for it.");
            return null;
        }
        var tokenizer = TokenCounter.For(model);
        var call = new ChatCall
        {
            Body = translated.ChatBody,
            Model = model,
            Tokenizer = tokenizer,
            PromptTokens = tokenizer.CountPrompt(translated.ChatBody),
            Stream = stream && !counting,
            ClientWantsUsage = true,   // translated streams end with the usage chunk that message_delta reports
            CompletionIdPrefix = "msg_",
            Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            MaxOutputTokens = (int)maxTokens,
            ClientSetMaxTokens = true,
            OutputBound = maxTokens,
            Choices = 1,
            MediaTokensBound = (long)translated.Images * _options.ImagePartWorstCaseTokens + (long)translated.Documents * _options.AudioOrFilePartWorstCaseTokens,
        };
        return new MessagesCall(body, call, translated);
    }

    private bool HasAnthropicRoute(ResolvedModel model)
    {
        foreach (var provider in pipeline.Providers(model))
            if (provider.Adapter is AnthropicAdapter) return true;
        return false;
    }

    /// <summary>
    /// The shape the Messages API requires, checked before anything is looked up: max_tokens (not for
    /// count_tokens), messages of user and assistant turns whose content is a string or typed blocks, system as a
    /// string or blocks, tools as an array. Returns max_tokens (0 when counting), or null after writing the 400.
    /// </summary>
    private static async Task<long?> CheckShapeAsync(HttpContext context, JsonObject body, bool counting)
    {
        long maxTokens = 0;
        if (!counting)
        {
            if (body["max_tokens"] is null)
            {
                await ApiErrors.InvalidRequestAsync(context, "max_tokens: Field required");
                return null;
            }
            if (!RequestBody.OptionalInt(body, "max_tokens", 1, int.MaxValue, out var value, out var error))
            {
                await ApiErrors.InvalidRequestAsync(context, error!);
                return null;
            }
            maxTokens = value!.Value;
        }
        if (body["messages"] is not JsonArray { Count: > 0 } messages)
        {
            await ApiErrors.InvalidRequestAsync(context, body["messages"] is null ? "messages: Field required" : "messages: expected a non-empty array of messages");
            return null;
        }
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject message || ChatTranslation.Str(message["role"]) is not ("user" or "assistant"))
            {
                await ApiErrors.InvalidRequestAsync(context, $"messages.{i}.role: Input should be 'user' or 'assistant'");
                return null;
            }
            var content = message["content"];
            var valid = content switch
            {
                JsonValue v => v.GetValueKind() == JsonValueKind.String,
                JsonArray blocks => AllTyped(blocks),
                _ => false,
            };
            if (!valid)
            {
                await ApiErrors.InvalidRequestAsync(context, $"messages.{i}.content: expected a string or an array of content blocks, each an object with a 'type'");
                return null;
            }
        }
        var system = body["system"];
        if (system is not null && system.GetValueKind() != JsonValueKind.Null && !(system.GetValueKind() == JsonValueKind.String || system is JsonArray blocksOfSystem && AllTyped(blocksOfSystem)))
        {
            await ApiErrors.InvalidRequestAsync(context, "system: expected a string or an array of text blocks");
            return null;
        }
        if (body["tools"] is { } tools && tools is not JsonArray)
        {
            await ApiErrors.InvalidRequestAsync(context, "tools: expected an array");
            return null;
        }
        if (body["tool_choice"] is { } choice && choice is not JsonObject)
        {
            await ApiErrors.InvalidRequestAsync(context, "tool_choice: expected an object such as {\"type\": \"auto\"}");
            return null;
        }
        return maxTokens;
    }

    private static bool AllTyped(JsonArray blocks)
    {
        foreach (var block in blocks)
            if (block is not JsonObject b || ChatTranslation.Str(b["type"]) is null) return false;
        return true;
    }

    /// <summary>
    /// A whole answer: its usage decided by the chat rules (<see cref="ChatBilling.Billable"/>), then, from Anthropic, its
    /// bytes as sent; from any other provider, the Messages shape of it with the usage billed.
    /// </summary>
    private async ValueTask<TokenUsage?> RelayJsonAsync(HttpContext context, ChatCall call, RouteResult route, long started, bool native)
    {
        var answer = await pipeline.ReadAnswerAsync(context, route, (call, route.Provider!.Adapter),
            static (bytes, s) => Tuple.Create(bytes, s.Adapter.ReadChatCompletion(bytes, s.call)));
        if (answer is null) return null;
        var (sent, result) = answer;
        var usage = ChatBilling.Billable(call, result);
        var cost = call.Pricing.CostMicros(usage);
        if (native) await pipeline.WriteAnswerAsync(context, call, route, started, cost, sent, static (output, bytes) => output.Write(bytes));
        else await pipeline.WriteAnswerAsync(context, call, route, started, cost, MessagesTranslation.ToMessage(result.Response, call, usage));
        return usage;
    }
}
