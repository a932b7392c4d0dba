using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Byok;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using CommunityToolkit.HighPerformance.Buffers;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The metered steps of a generated answer after its request is validated, in the order every generating endpoint
/// keeps (issue 15: the Responses and legacy Completions endpoints run through it): a stream slot, the token rate,
/// the reservation of the worst case, the stream checkpoint, routing, the route's failure written in OpenAI's
/// envelope (a client that left after the upstream took the request owes its prompt), the endpoint's relay, and on
/// every path the settlement, usage row and token refund. The endpoint supplies only its upstream request and its relay.
/// A call the account can serve with its own provider key (BYOK, issue 14) goes upstream with that key and is billed the
/// BYOK fee; <c>byok/&lt;label&gt;/&lt;model&gt;</c> names the account's own OpenAI-compatible endpoint.
/// </summary>
public sealed partial class GenerationPipeline(
    ModelCatalog catalog, UpstreamRouter router, Metering metering, RateLimits rateLimits, OpenStreams streams, StreamCheckpoints checkpoints,
    ByokGateway byokGateway, IOptions<GatewayOptions> options, ILogger<GenerationPipeline> logger)
{
    private readonly GatewayOptions _options = options.Value;

    public int DefaultMaxOutputTokens => metering.DefaultMaxOutputTokens;

    /// <summary>
    /// The chat model a generating call names, or null after writing OpenAI's error: unknown (404), not allowed for the
    /// key (403), not a chat model, unpriced or without a route (503, never served free: DESIGN rule 3).
    /// </summary>
    public async Task<ResolvedModel?> ResolveChatModelAsync(HttpContext context, KeyIdentity key, string modelName)
    {
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
            await ApiErrors.InvalidRequestAsync(context, $"`{model.Id}` is an {model.Kind} model, not a chat model.", "model");
            return null;
        }
        if (model.Pricing is null)
        {
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
        return model;
    }

    /// <summary>The configured provider of each of the model's routes (a route naming an unconfigured provider is left out).</summary>
    public IEnumerable<Provider> Providers(ResolvedModel model)
    {
        foreach (var route in model.Routes)
            if (router.Provider(route.Provider) is { } provider) yield return provider;
    }

    /// <summary>Relays an answered route to the client; returns the usage to bill (null: nothing billable was produced).</summary>
    public delegate ValueTask<TokenUsage?> Relay(RouteResult route, OpenStream? checkpoint);

    /// <inheritdoc cref="Relay"/>
    public delegate ValueTask<TokenUsage?> Relay<in TState>(TState state, RouteResult route, OpenStream? checkpoint);

    /// <summary>
    /// Runs the call; <paramref name="createRequest"/> builds the upstream request of one route attempt (provider, upstream
    /// model, key; null: this route cannot serve the call, try the next). <paramref name="started"/>: when the request arrived.
    /// </summary>
    public Task RunAsync(HttpContext context, KeyIdentity key, ChatCall call, long started, Func<Provider, string, string?, HttpRequestMessage?> createRequest,
        Relay relay) =>
        RunAsync(context, key, call, started, (createRequest, relay),
            static (s, provider, upstreamModel, apiKey) => s.createRequest(provider, upstreamModel, apiKey), static (s, route, checkpoint) => s.relay(route, checkpoint));

    /// <summary>As the other overload, with the request built and relayed from <paramref name="state"/> (the chat endpoint's hot path: no closures).</summary>
    public async Task RunAsync<TState>(HttpContext context, KeyIdentity key, ChatCall call, long started, TState state,
        Func<TState, Provider, string, string?, HttpRequestMessage?> createRequest, Relay<TState> relay)
    {
        var (byokRefused, byok) = await byokGateway.ForCallAsync(context, key, call.Model);
        if (byokRefused) return;
        using var slot = streams.TryOpen(call.Stream);
        if (!slot.Granted)
        {
            await streams.RefuseAsync(context);
            return;
        }
        var promptBound = ChatBilling.PromptBound(call);
        var admittedTokens = promptBound + call.OutputBound;
        if (!await rateLimits.AdmitTokensAsync(context, key, admittedTokens)) return;
        var worstCase = Metering.WorstCaseMicros(byokGateway.ReservePricing(byok, call.Model), promptBound, call.OutputBound);
        if (await metering.ReserveOrRefuseAsync(context, key, worstCase) is not { } reservation) return;
        var outcome = MeteredOutcome.Unserved(call.Stream);
        var checkpoint = call.Stream ? checkpoints.Open(context.TraceIdentifier, reservation, key, call.Model) : null;
        try
        {
            using var route = await router.SendAsync(call.Model, call.Stream, state, createRequest, context.RequestAborted, byok);
            // Served (or started) with the user's own key: billed the BYOK fee from here on, the cost in the answer included.
            if (route.Byok) call.Pricing = byok!.FeePricing;
            if (await GatewayResponses.WriteRouteFailureAsync(context, route))
            {
                // The upstream had the whole request when the client left: it may be generating and billing us, so the
                // client pays at least its prompt (issue 11 #4). Our own timeouts and upstream failures are not billed.
                var promptOnly = route is { Outcome: RouteOutcome.ClientAborted, RequestSent: true } ? ChatBilling.PromptOnly(call) : (TokenUsage?)null;
                outcome = outcome with
                {
                    Provider = route.Provider?.Name ?? "", Status = context.Response.StatusCode, Usage = promptOnly, Pricing = call.Pricing, Byok = route.Byok,
                };
                return;
            }

            var provider = route.Provider!;
            if (call.Stream) call.ReleaseRequest();
            context.Response.Headers["X-AiGate-Provider"] = provider.Name;
            if (route.Byok) context.Response.Headers["X-AiGate-Byok"] = "true";
            var ttfb = (int)route.UpstreamTime.TotalMilliseconds;
            checkpoint?.Routed(provider.Name, call.Pricing, route.Byok);
            var usage = await relay(state, route, checkpoint);
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

    /// <summary>
    /// A whole (non-streamed) answer's body, read to its end even when the client has gone (the provider generated it
    /// and bills it; the call's total deadline still bounds it), and read by <paramref name="read"/> (which may throw
    /// <see cref="UpstreamProtocolException"/>); null after writing the 502 when it is too large, broke off, or is not
    /// what the provider documents.
    /// </summary>
    public async ValueTask<TAnswer?> ReadAnswerAsync<TState, TAnswer>(HttpContext context, RouteResult route, TState state, Func<byte[], TState, TAnswer> read)
        where TAnswer : class
    {
        var bytes = await GatewayResponses.ReadBeforeDeadlineAsync(route, _options.MaxUpstreamResponseBytes);
        if (bytes is null)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider's answer was too large or broke off.", "server_error", "upstream_error");
            return null;
        }
        try
        {
            return read(bytes, state);
        }
        catch (UpstreamProtocolException ex)
        {
            LogProtocolError(route.Provider!.Name, ex.Message);
            await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway, "The upstream provider answered in an unexpected format.", "server_error", "upstream_error");
            return null;
        }
    }

    /// <summary>Writes a whole answer with its cost header and timings; a client gone by then is logged, and billed all the same.</summary>
    public ValueTask WriteAnswerAsync(HttpContext context, ChatCall call, RouteResult route, long started, long costMicros, JsonNode answer) =>
        WriteAnswerAsync(context, call, route, started, costMicros, answer, static (output, node) =>
        {
            using var writer = new Utf8JsonWriter(output);
            node.WriteTo(writer);
        });

    /// <summary>
    /// As the other overload, the body written by <paramref name="write"/> (the provider's own bytes, or spliced ones).
    /// It is built first, in pooled arrays, so the answer goes out with a <c>Content-Length</c> in one send: written
    /// straight into the response, it would be chunked, and the closing chunk a second send (and a second read for the client).
    /// </summary>
    public async ValueTask WriteAnswerAsync<TState>(HttpContext context, ChatCall call, RouteResult route, long started, long costMicros, TState state,
        Action<IBufferWriter<byte>, TState> write)
    {
        var response = context.Response;
        response.ContentType = "application/json";
        response.Headers["X-AiGate-Cost-Usd"] = ModelPricing.MicrosToUsd(costMicros).ToString(System.Globalization.CultureInfo.InvariantCulture);
        GatewayResponses.SetServerTiming(response, started, route.UpstreamTime);
        using (var body = new ArrayPoolBufferWriter<byte>(4096))
        {
            write(body, state);
            response.ContentLength = body.WrittenSpan.Length;
            response.BodyWriter.Write(body.WrittenSpan);
        }
        try
        {
            await response.BodyWriter.FlushAsync(context.RequestAborted);
        }
        // A client gone (cancelled, or its connection reset under the write) is billed all the same: the answer was generated.
        catch (Exception ex) when (ex is IOException || (ex is OperationCanceledException && context.RequestAborted.IsCancellationRequested))
        {
            LogClientAborted(call.Model.Id, route.Provider!.Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} sent an unreadable answer: {Reason}")]
    private partial void LogProtocolError(string provider, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client left the answer of {Model} from {Provider}")]
    private partial void LogClientAborted(string model, string provider);
}
