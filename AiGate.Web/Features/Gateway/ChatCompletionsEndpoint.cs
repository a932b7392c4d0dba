using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Byok;
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
public sealed partial class ChatCompletionsEndpoint(
    GatewayAdmission admission, ModelCatalog catalog, UpstreamRouter router, Metering metering, RateLimits rateLimits, IOptions<GatewayOptions> options,
    OpenStreams streams, StreamCheckpoints checkpoints, StreamRelay relay, ByokGateway byokGateway, ILogger<ChatCompletionsEndpoint> logger)
{
    private static readonly string[] Roles = ["system", "developer", "user", "assistant", "tool", "function"];
    private readonly GatewayOptions _options = options.Value;

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await RequestBody.ReadObjectAsync(context, _options.MaxRequestBytes) is not var (body, _)) return;
        var call = await ValidateAsync(context, key, body);
        if (call is null) return;
        var (byokRefused, byok) = await byokGateway.ForCallAsync(context, key, call.Model);
        if (byokRefused) return;
        using var slot = streams.TryOpen(call.Stream);
        if (!slot.Granted)
        {
            await streams.RefuseAsync(context);
            return;
        }

        // Tokens as OpenAI counts them at admission: the prompt's estimate plus the output limit.
        var promptBound = ChatBilling.PromptBound(call);
        var admittedTokens = promptBound + call.OutputBound;
        if (!await rateLimits.AdmitTokensAsync(context, key, admittedTokens)) return;
        var worstCase = Metering.WorstCaseMicros(byokGateway.ReservePricing(byok, call.Model), promptBound, call.OutputBound);
        if (await metering.ReserveOrRefuseAsync(context, key, worstCase) is not { } reservation) return;
        var outcome = new MeteredOutcome("", null, StatusCodes.Status502BadGateway, call.Stream, null);
        var checkpoint = call.Stream ? checkpoints.Open(context.TraceIdentifier, reservation, key, call.Model) : null;
        try
        {
            using var route = await router.SendAsync(call.Model, call.Stream, (provider, upstreamModel, apiKey) =>
                call.Choices > 1 && !provider.Adapter.SupportsChoices ? null : provider.Adapter.CreateChatRequest(provider, call, upstreamModel, apiKey),
                context.RequestAborted, byok);
            // Served (or started) with the user's own key: billed the BYOK fee from here on, the cost in the answer included.
            if (route.Byok) call.Pricing = byok!.FeePricing;
            if (await GatewayResponses.WriteRouteFailureAsync(context, route))
            {
                // The upstream had the whole request when the client left: it may be generating and
                // billing us, so the client pays at least its prompt (issue 11 #4). Our own timeouts and
                // upstream failures are not billed.
                var promptOnly = route is { Outcome: RouteOutcome.ClientAborted, RequestSent: true } ? ChatBilling.PromptOnly(call) : (TokenUsage?)null;
                outcome = outcome with
                {
                    Provider = route.Provider?.Name ?? "", Status = context.Response.StatusCode, Usage = promptOnly, Pricing = call.Pricing, Byok = route.Byok,
                };
                return;
            }

            var provider = route.Provider!;
            context.Response.Headers["X-AiGate-Provider"] = provider.Name;
            if (route.Byok) context.Response.Headers["X-AiGate-Byok"] = "true";
            var ttfb = (int)route.UpstreamTime.TotalMilliseconds;
            checkpoint?.Routed(provider.Name, call.Pricing, route.Byok);
            TokenUsage? usage;
            if (call.Stream)
            {
                using var translator = provider.Adapter.CreateStreamTranslator(call);
                usage = await relay.RelayAsync(context, call, route, started, checkpoint, translator, new SseWriter(context.Response.BodyWriter));
            }
            else usage = await RelayJsonAsync(context, call, route, started);
            outcome = new MeteredOutcome(provider.Name, usage, context.Response.StatusCode, call.Stream, ttfb, call.Pricing, route.Byok);
        }
        finally
        {
            // Settles on every path, exceptions included: a reservation is never left held (RELIABILITY L6).
            checkpoints.Close(checkpoint);
            await metering.CompleteAsync(context, reservation, key, call.Model, outcome, started);
            rateLimits.Refund(key, admittedTokens - (outcome.Usage?.TotalTokens ?? 0));
        }
    }

    private async Task<ChatCall?> ValidateAsync(HttpContext context, KeyIdentity key, JsonObject body)
    {
        var modelName = RequestBody.RequiredString(body, "model", out var error);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "model");
            return null;
        }
        if (body["messages"] is not JsonArray { Count: > 0 } messages)
        {
            await ApiErrors.InvalidRequestAsync(context, body["messages"] is null
                ? "Missing required parameter: 'messages'."
                : "Invalid 'messages': expected a non-empty array of messages.", "messages");
            return null;
        }
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject message || message["role"] is not JsonValue role || !role.TryGetValue<string>(out var r) || !Roles.Contains(r))
            {
                await ApiErrors.InvalidRequestAsync(context,
                    $"Invalid 'messages[{i}]': each message must be an object with a 'role' of {string.Join(", ", Roles)}.", $"messages[{i}].role");
                return null;
            }
        }
        if (!RequestBody.OptionalBool(body, "stream", out var stream, out error)
            || !RequestBody.OptionalInt(body, "max_tokens", 1, int.MaxValue, out var maxTokens, out error)
            || !RequestBody.OptionalInt(body, "max_completion_tokens", 1, int.MaxValue, out var maxCompletionTokens, out error)
            || !RequestBody.OptionalInt(body, "n", 1, 128, out var n, out error)
            || !RequestBody.OptionalNumber(body, "temperature", 0, 2, out error)
            || !RequestBody.OptionalNumber(body, "top_p", 0, 1, out error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!, ParamOf(error!));
            return null;
        }
        var wantsUsage = false;
        if (body["stream_options"] is { } streamOptions)
        {
            if (streamOptions is not JsonObject so || !RequestBody.OptionalBool(so, "include_usage", out wantsUsage, out _))
            {
                await ApiErrors.InvalidRequestAsync(context, "Invalid 'stream_options': expected an object like {\"include_usage\": true}.", "stream_options");
                return null;
            }
        }

        // byok/<label>/<model>: the account's own OpenAI-compatible endpoint (the 404 is written there when it has none of that label).
        ResolvedModel? model;
        if (CustomModels.IsCustom(modelName))
        {
            model = await byokGateway.ResolveCustomAsync(context, key, modelName);
            if (model is null) return null;
        }
        else if ((model = await catalog.FindAsync(modelName, context.RequestAborted)) is null)
        {
            await ApiErrors.ModelNotFoundAsync(context, modelName);
            return null;
        }
        if (key.AllowedModels.Count > 0 && !key.AllowedModels.Contains(model.Id))
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"This API key may not use the model `{model.Id}`.", "invalid_request_error", "model_not_allowed", "model");
            return null;
        }
        if (model.Kind != "chat")
        {
            await ApiErrors.InvalidRequestAsync(context, $"`{model.Id}` is an {model.Kind} model; use /api/v1/embeddings.", "model");
            return null;
        }
        if (model.Pricing is null)
        {
            // Never served for free (DESIGN rule 3): the catalogue flags it for admins.
            await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                $"`{model.Id}` is temporarily unavailable: it has no price yet.", "server_error", "model_not_priced", "model");
            return null;
        }
        if (model.Routes.Count == 0)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                $"No provider is configured to serve `{model.Id}` right now.", "server_error", "model_unavailable", "model");
            return null;
        }
        // Both limits are checked (an OpenAI-compatible server may honour either); the one forwarded to
        // translated providers is OpenAI's rule, max_completion_tokens first, and the reservation covers the larger.
        foreach (var (name, limit) in new[] { ("max_completion_tokens", maxCompletionTokens), ("max_tokens", maxTokens) })
        {
            if (limit > model.MaxOutputTokens)
            {
                await ApiErrors.InvalidRequestAsync(context, $"Invalid '{name}': `{model.Id}` writes at most {model.MaxOutputTokens} tokens.", name);
                return null;
            }
        }
        var choices = (int)(n ?? 1);
        if (choices > 1 && !HasRouteWithChoices(model))
        {
            await ApiErrors.InvalidRequestAsync(context, $"Invalid 'n': `{model.Id}` answers with one choice per request; send n = 1 or leave it out.", "n");
            return null;
        }
        var requested = maxCompletionTokens ?? maxTokens;
        var maxOutput = (int)(requested ?? Math.Min(model.MaxOutputTokens, metering.DefaultMaxOutputTokens));
        var mediaTokens = MediaTokens(messages);

        var tokenizer = TokenCounter.For(model);
        return new ChatCall
        {
            Body = body,
            Model = model,
            Tokenizer = tokenizer,
            PromptTokens = tokenizer.CountPrompt(body),
            Stream = stream,
            ClientWantsUsage = wantsUsage,
            CompletionId = "chatcmpl-" + Guid.CreateVersion7().ToString("N"),
            Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            MaxOutputTokens = maxOutput,
            ClientSetMaxTokens = requested is not null,
            OutputBound = Math.Max(maxOutput, Math.Max(maxTokens ?? 0, maxCompletionTokens ?? 0)) * (long)choices,
            Choices = choices,
            MediaTokensBound = mediaTokens,
        };
    }

    private bool HasRouteWithChoices(ResolvedModel model)
    {
        foreach (var route in model.Routes)
            if (router.Adapter(route.Provider)?.SupportsChoices == true) return true;
        return false;
    }

    /// <summary>
    /// The fixed worst case of the messages' image, audio and file parts: their bytes (a URL, or base64
    /// data) say nothing about what the provider will count, and the prompt's token count leaves them out.
    /// </summary>
    private long MediaTokens(JsonArray messages)
    {
        long tokens = 0;
        foreach (var message in messages)
        {
            if (message?["content"] is not JsonArray parts) continue;
            foreach (var part in parts)
            {
                if (part is not JsonObject p || p["type"] is not JsonValue type || !type.TryGetValue<string>(out var kind)) continue;
                tokens += kind switch
                {
                    "image_url" => _options.ImagePartWorstCaseTokens,
                    "input_audio" or "file" => _options.AudioOrFilePartWorstCaseTokens,
                    _ => 0,
                };
            }
        }
        return tokens;
    }

    private static string? ParamOf(string error)
    {
        var start = error.IndexOf('\'');
        var end = start < 0 ? -1 : error.IndexOf('\'', start + 1);
        return end > start ? error[(start + 1)..end] : null;
    }

    /// <summary>Relays a JSON answer; returns the usage to bill (null: nothing billable was produced).</summary>
    private async Task<TokenUsage?> RelayJsonAsync(HttpContext context, ChatCall call, RouteResult route, long started)
    {
        var provider = route.Provider!;
        // The body is read to its end even when the client has gone: the provider has generated (and bills)
        // the answer, so its usage is what this call costs. The call's total deadline still bounds it.
        var bytes = await GatewayResponses.ReadBeforeDeadlineAsync(route, _options.MaxUpstreamResponseBytes);
        if (bytes is null)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider's answer was too large or broke off.", "server_error", "upstream_error");
            return null;
        }
        ChatCompletionResult result;
        try
        {
            result = provider.Adapter.ReadChatCompletion(bytes, call);
        }
        catch (UpstreamProtocolException ex)
        {
            LogProtocolError(provider.Name, ex.Message);
            await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider answered in an unexpected format.", "server_error", "upstream_error");
            return null;
        }
        var usage = ChatBilling.Billable(call, result);
        var cost = call.Pricing.CostMicros(usage);
        result.Response["usage"] = UsageJson.Create(usage, cost);

        var response = context.Response;
        response.ContentType = "application/json";
        response.Headers["X-AiGate-Cost-Usd"] = ModelPricing.MicrosToUsd(cost).ToString(System.Globalization.CultureInfo.InvariantCulture);
        GatewayResponses.SetServerTiming(response, started, route.UpstreamTime);
        await using (var writer = new Utf8JsonWriter(response.BodyWriter))
            result.Response.WriteTo(writer);
        try
        {
            await response.BodyWriter.FlushAsync(context.RequestAborted);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            LogClientAborted(call.Model.Id, provider.Name);   // the answer was generated: it is billed all the same
        }
        return usage;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} sent an unreadable answer: {Reason}")]
    private partial void LogProtocolError(string provider, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client left the stream of {Model} from {Provider}")]
    private partial void LogClientAborted(string model, string provider);
}
