using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>/api/v1/passthrough/{provider}/{**path}</c>: a provider's own API, forwarded by YARP's
/// <see cref="IHttpForwarder"/> without translation, for the allow-listed endpoints whose cost the
/// provider reports (<see cref="PassthroughRules"/>). Same key, admission, rate limits and
/// reservation as chat; the provider's key replaces the client's; the reservation settles to the
/// answer's own usage fields, priced as the catalogue model routed to that provider and upstream model.
/// </summary>
public sealed partial class PassthroughEndpoint(
    GatewayAdmission admission, ModelCatalog catalog, ProviderRegistry providers, Metering metering, RateLimits rateLimits,
    OpenStreams streams, IHttpForwarder forwarder, ProviderKeyRing keys, IOptions<GatewayOptions> options,
    ILogger<PassthroughEndpoint> logger)
{
    public const string Prefix = "/api/v1/passthrough/";

    // Bytes go upstream as the client wrote them, not with System.Text.Json's default \u escapes.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly GatewayOptions _options = options.Value;

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        if (await ResolveTargetAsync(context) is not var (provider, route)) return;
        if (await RequestBody.ReadObjectAsync(context, _options.MaxRequestBytes) is not var (body, requestBytes)) return;

        var modelName = route.ModelFromPath ?? RequestBody.RequiredString(body, "model", out _);
        if (modelName is null)
        {
            await ApiErrors.InvalidRequestAsync(context, "Missing required parameter: 'model'.", "model");
            return;
        }
        if (await ResolveModelAsync(context, key, provider, modelName) is not { } model) return;
        if (!RequestBody.OptionalBool(body, "stream", out var stream, out var error))
        {
            await ApiErrors.InvalidRequestAsync(context, error!, "stream");
            return;
        }
        if (stream && !route.AllowsStream)
        {
            await ApiErrors.InvalidRequestAsync(context,
                $"Streaming is not available through the pass-through for {route.RelativePath}; send \"stream\": false, or use /api/v1/chat/completions, which streams every provider.",
                "stream", "stream_not_supported");
            return;
        }
        if (PassthroughRules.Unpriceable(provider.Kind, route, body, context.Request.Headers["anthropic-beta"].ToString()) is { } unpriceable)
        {
            await ApiErrors.InvalidRequestAsync(context, unpriceable, code: "feature_not_priced");
            return;
        }
        if (stream)
        {
            // The stream's usage is what is billed, so it is always asked for; other stream_options pass through.
            var streamOptions = body["stream_options"] as JsonObject ?? [];
            streamOptions["include_usage"] = true;
            body["stream_options"] = streamOptions;
        }
        // The provider's next key (round robin over the vault's keys and the configured one), as the relay takes.
        if (keys.Next(provider.Name) is not { } providerKey)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                $"The provider '{provider.Name}' has no usable API key at the moment. Please retry later.", "server_error", "provider_unavailable");
            return;
        }
        using var slot = streams.TryOpen(stream);
        if (!slot.Granted)
        {
            await streams.RefuseAsync(context);
            return;
        }

        var pricing = model.Pricing!.Value;
        var promptBound = requestBytes / 3 + 1;   // as embeddings: a token is at least a third of a byte's worth of JSON
        var outputBound = PassthroughRules.OutputBound(provider.Kind, route, body, model);
        var admittedTokens = promptBound + outputBound;
        if (!await rateLimits.AdmitTokensAsync(context, key, admittedTokens)) return;
        if (await metering.ReserveOrRefuseAsync(context, key, Metering.WorstCaseMicros(pricing, promptBound, outputBound)) is not { } reservation) return;

        var outcome = new MeteredOutcome(provider.Name, null, StatusCodes.Status502BadGateway, stream, null);
        var tap = new PassthroughUsageTap(provider.Kind, _options.MaxUpstreamResponseBytes);
        try
        {
            var bytes = Serialize(body);
            context.Request.Body = new MemoryStream(bytes, writable: false);
            context.Request.ContentLength = bytes.Length;
            context.Request.Headers.Remove("Transfer-Encoding");

            var destination = new UriBuilder(provider.Url(route.RelativePath)) { Query = UpstreamQuery(context.Request.Query) }.Uri;
            var config = new ForwarderRequestConfig { ActivityTimeout = stream ? provider.StreamIdleTimeout : provider.NonStreamTimeout };
            var upstreamStarted = Stopwatch.GetTimestamp();
            var forwarded = await forwarder.SendAsync(context, provider.BaseUrl.AbsoluteUri, provider.Http, config,
                new PassthroughTransformer(provider, providerKey.Secret, destination, tap), streams.MustEnd);
            var upstreamMs = (int)Stopwatch.GetElapsedTime(upstreamStarted).TotalMilliseconds;
            if (tap.Status is StatusCodes.Status401Unauthorized or StatusCodes.Status403Forbidden) keys.Rejected(providerKey, tap.Status);

            if (forwarded != ForwarderError.None)
            {
                LogForwardFailed(provider.Name, forwarded);
                await WriteForwardErrorAsync(context, forwarded);
            }
            outcome = new MeteredOutcome(provider.Name, Billable(tap, forwarded, requestBytes, outputBound), context.Response.StatusCode, stream,
                tap.Status == 0 ? null : upstreamMs);
        }
        finally
        {
            // Settles on every path, exceptions included: a reservation is never left held (RELIABILITY L6).
            await metering.CompleteAsync(context, reservation, key, model, outcome, started);
            rateLimits.Refund(key, admittedTokens - (outcome.Usage?.TotalTokens ?? 0));
        }
    }

    /// <summary>
    /// What the call costs. A 2xx answer: its usage fields when it carried them (and they are plausible);
    /// otherwise (the client left, the upstream broke off, an answer with no usage) an estimate flagged as
    /// such: a token per 4 bytes of the request, and per 4 bytes of a JSON answer relayed or per event of a
    /// stream relayed (OpenAI streams about a token per chunk), the output capped at its reserved bound. A non-2xx answer costs nothing (providers do not bill refusals). No answer: the prompt's
    /// estimate when the upstream had the whole request and the client left while it was generating (as chat,
    /// issue 11 #4); nothing when the request never reached it or our own deadline ran out.
    /// </summary>
    private static TokenUsage? Billable(PassthroughUsageTap tap, ForwarderError error, long requestBytes, long outputBound)
    {
        var prompt = requestBytes / 4 + 1;
        if (tap.Status == 0) return error == ForwarderError.RequestCanceled ? new TokenUsage(prompt, 0, 0, Estimated: true) : null;
        if (tap.Status is < 200 or > 299) return null;
        if (tap.Usage() is { } usage && usage.CompletionTokens <= outputBound * 10 + 16) return usage;
        return new TokenUsage(prompt, Math.Min(outputBound, tap.EventStream ? tap.Events : tap.Bytes / 4), 0, Estimated: true);
    }

    /// <summary>The provider and the allow-listed endpoint the path names, or the refusal written and null.</summary>
    private async Task<(Provider, PassthroughRoute)?> ResolveTargetAsync(HttpContext context)
    {
        // The path as the client sent it: percent-escapes (%2e%2e, %2F) are refused outright, since no
        // allow-listed endpoint needs one and a decoded path would hide them.
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        var query = raw.IndexOf('?');
        if (query >= 0) raw = raw[..query];
        var path = context.Request.Path.Value ?? "";
        if (raw.Contains('%') || raw.Contains('\\') || path.Contains('\\') || !path.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            await InvalidPathAsync(context);
            return null;
        }
        var segments = path[Prefix.Length..].Split('/');
        foreach (var segment in segments)
        {
            if (segment is "" or "." or "..")
            {
                await InvalidPathAsync(context);
                return null;
            }
        }
        if (!providers.ByName.TryGetValue(segments[0], out var provider) || provider.Kind == ProviderKind.Echo)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status404NotFound,
                $"Unknown provider `{ApiErrors.Truncate(segments[0], 64)}` for the pass-through.", "invalid_request_error", "provider_not_found");
            return null;
        }
        if (PassthroughRules.Match(provider.Kind, context.Request.Method, segments[1..]) is not { } route)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status400BadRequest,
                $"{context.Request.Method} {ApiErrors.Truncate(string.Join('/', segments[1..]), 128)} is not an endpoint the pass-through can meter for " +
                $"`{provider.Name}`. Allowed: {PassthroughRules.Describe(provider.Kind)}.", "invalid_request_error", "endpoint_not_priced");
            return null;
        }
        return (provider, route);
    }

    private static Task InvalidPathAsync(HttpContext context) => ApiErrors.InvalidRequestAsync(context,
        "Invalid pass-through path: it must be /api/v1/passthrough/{provider}/{endpoint} with plain segments (no '.', '..', empty or percent-encoded segments).",
        code: "invalid_path");

    /// <summary>The catalogue model routed to this provider under this upstream model name, or the refusal written and null.</summary>
    private async Task<ResolvedModel?> ResolveModelAsync(HttpContext context, KeyIdentity key, Provider provider, string upstreamModel)
    {
        ResolvedModel? found = null;
        foreach (var model in await catalog.GetAllAsync(context.RequestAborted))
        {
            foreach (var route in model.Routes)
            {
                if (route.Provider == provider.Name && route.UpstreamModel == upstreamModel)
                {
                    found = model;
                    break;
                }
            }
            if (found is not null) break;
        }
        if (found is null)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status404NotFound,
                $"The model `{ApiErrors.Truncate(upstreamModel, 128)}` is not served through `{provider.Name}`: the pass-through serves the catalogue's models " +
                "by their upstream names (GET /api/v1/models lists them), since only those have a price.", "invalid_request_error", "model_not_found", "model");
            return null;
        }
        if (key.AllowedModels.Count > 0 && !key.AllowedModels.Contains(found.Id))
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"This API key may not use the model `{found.Id}`.", "invalid_request_error", "model_not_allowed", "model");
            return null;
        }
        if (found.Pricing is null)
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                $"`{found.Id}` is temporarily unavailable: it has no price yet.", "server_error", "model_not_priced", "model");
            return null;
        }
        return found;
    }

    /// <summary>The client's query without <c>key</c> (Gemini's query-string API key: the gateway key must never go upstream).</summary>
    private static string UpstreamQuery(IQueryCollection query)
    {
        if (query.Count == 0) return "";
        var kept = new List<KeyValuePair<string, string?>>(query.Count);
        foreach (var (name, values) in query)
        {
            if (string.Equals(name, "key", StringComparison.OrdinalIgnoreCase)) continue;
            foreach (var value in values) kept.Add(new(name, value));
        }
        return QueryString.Create(kept).ToUriComponent().TrimStart('?');
    }

    private static byte[] Serialize(JsonObject body)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            body.WriteTo(writer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// YARP's failures before an answer started, in OpenAI's envelope (YARP itself sets only a status).
    /// Once the answer has started, YARP has already ended it (the client sees a broken response).
    /// </summary>
    private static Task WriteForwardErrorAsync(HttpContext context, ForwarderError error) => error switch
    {
        ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled => Task.CompletedTask,   // the client left
        ForwarderError.RequestTimedOut => ApiErrors.WriteAsync(context, StatusCodes.Status504GatewayTimeout,
            "The upstream provider did not answer in time. Please retry.", "server_error", "upstream_timeout"),
        _ => ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway,
            "The upstream provider failed to answer. Please retry.", "server_error", "upstream_error"),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pass-through to {Provider} ended with {Error}")]
    private partial void LogForwardFailed(string provider, ForwarderError error);
}
