using System.Diagnostics;
using System.Net.WebSockets;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// <c>GET /api/v1/realtime?model=…</c>: OpenAI's Realtime API over a WebSocket, relayed to the provider's Realtime
/// WebSocket with the platform's key. Before the upgrade, as every metered call: the key (bearer header, or the
/// <c>openai-insecure-api-key.&lt;key&gt;</c> subprotocol browsers send), the request rate, a place among the
/// account's calls in flight and among the instance's streams, a realtime model, and a reservation; any refusal is
/// a plain HTTP answer in OpenAI's error envelope. Then <see cref="RealtimeSession"/> relays and bills.
/// </summary>
public sealed partial class RealtimeEndpoint(
    GatewayAdmission admission, ModelCatalog catalog, ProviderRegistry providers, ProviderKeyRing keys, Metering metering, OpenStreams streams,
    ApiKeyCache keyCache, IOptions<GatewayOptions> options, ILoggerFactory loggers, ILogger<RealtimeEndpoint> logger)
{
    public const string Path = "/api/v1/realtime";
    public const string KeyProtocolPrefix = "openai-insecure-api-key.";
    private const string BetaProtocol = "openai-beta.realtime-v1";
    private readonly GatewayOptions _options = options.Value;

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        var offered = context.WebSockets.WebSocketRequestedProtocols;
        var secret = KeyFromProtocols(offered);
        // A browser cannot set headers on a WebSocket: its key comes as a subprotocol, and is admitted as a bearer key.
        if (secret is not null && context.Request.Headers.Authorization.Count == 0) context.Request.Headers.Authorization = "Bearer " + secret;
        using var admitted = await admission.AdmitAsync(context);
        if (admitted.Key is not { } key) return;
        secret = BearerSecret(context);
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await ApiErrors.InvalidRequestAsync(context,
                "/api/v1/realtime is a WebSocket endpoint: connect with a WebSocket (GET with Upgrade: websocket), e.g. wss://<host>/api/v1/realtime?model=<model>.",
                code: "websocket_required");
            return;
        }
        if (await ResolveModelAsync(context, key) is not { } model) return;
        using var slot = streams.TryOpen(stream: true);
        if (!slot.Granted)
        {
            await streams.RefuseAsync(context);
            return;
        }

        var pricing = RealtimePricing.For(model)!.Value;
        var reserve = ReserveMicros(model, pricing);
        if (await metering.ReserveOrRefuseAsync(context, key, reserve) is not { } reservation) return;
        WebSocket? upstream = null;
        var handedOver = false;
        try
        {
            var beta = context.Request.Headers["OpenAI-Beta"].ToString().Contains("realtime", StringComparison.Ordinal) || Contains(offered, BetaProtocol);
            var connected = await ConnectAsync(context, model, beta);
            if (connected is not var (socket, provider))
            {
                await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway,
                    $"No provider's Realtime service for `{model.Id}` could be reached. Please retry.", "server_error", "upstream_error");
                return;
            }
            upstream = socket;
            var client = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                // Only ever a protocol the client offered and never the key: a browser fails a handshake without one it offered.
                SubProtocol = Contains(offered, "realtime") ? "realtime" : Contains(offered, BetaProtocol) ? BetaProtocol : null,
                DangerousEnableCompression = false,
            });
            var session = new RealtimeSession(client, upstream, key, secret!, model, provider.Name, pricing, reserve, reservation, metering, streams,
                keyCache, _options, started, loggers.CreateLogger<RealtimeSession>());
            handedOver = true;
            LogOpened(session.Id, model.Id, provider.Name, key.Prefix);
            await session.RunAsync();
        }
        finally
        {
            // The session settles or releases its reservations itself; one that never started gives its reservation back whole.
            if (!handedOver) metering.Release(reservation);
            upstream?.Dispose();
        }
    }

    private long ReserveMicros(ResolvedModel model, RealtimePricing pricing) => _options.RealtimeReserveMicros > 0
        ? _options.RealtimeReserveMicros
        : pricing.WorstCaseMicros(Math.Min(_options.RealtimePromptAllowanceTokens, Math.Max(model.ContextLength, 1)), model.MaxOutputTokens);

    private async Task<ResolvedModel?> ResolveModelAsync(HttpContext context, KeyIdentity key)
    {
        var name = context.Request.Query["model"].ToString();
        if (string.IsNullOrWhiteSpace(name))
        {
            await ApiErrors.InvalidRequestAsync(context, "Missing required query parameter: 'model' (/api/v1/realtime?model=<model>).", "model");
            return null;
        }
        var model = await catalog.FindAsync(name, context.RequestAborted);
        if (model is null)
        {
            await ApiErrors.ModelNotFoundAsync(context, name);
            return null;
        }
        if (key.AllowedModels.Count > 0 && !key.AllowedModels.Contains(model.Id))
        {
            await ApiErrors.WriteAsync(context, StatusCodes.Status403Forbidden,
                $"This API key may not use the model `{model.Id}`.", "invalid_request_error", "model_not_allowed", "model");
            return null;
        }
        if (model.Kind != ModelKinds.Realtime)
        {
            await ApiErrors.InvalidRequestAsync(context,
                $"`{model.Id}` is a {model.Kind} model; /api/v1/realtime serves realtime models only (see /api/v1/models).", "model", "model_not_realtime");
            return null;
        }
        if (!model.IsPriced)
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

    /// <summary>
    /// The first route whose provider answers the WebSocket handshake, in the catalogue's order: OpenAI-kind providers at
    /// <c>wss://&lt;base URL&gt;/realtime?model=&lt;upstream model&gt;</c> with their next platform key, the echo provider in process.
    /// </summary>
    private async Task<(WebSocket Socket, Provider Provider)?> ConnectAsync(HttpContext context, ResolvedModel model, bool beta)
    {
        foreach (var route in model.Routes)
        {
            if (!providers.ByName.TryGetValue(route.Provider, out var provider)) continue;
            if (provider.Kind == ProviderKind.Echo) return (EchoRealtime.Connect(route.UpstreamModel), provider);
            if (provider.Kind != ProviderKind.OpenAi || keys.Next(provider.Name) is not { } providerKey) continue;
            var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader("Authorization", "Bearer " + providerKey.Secret);
            if (beta) socket.Options.SetRequestHeader("OpenAI-Beta", "realtime=v1");
            socket.Options.CollectHttpResponseDetails = true;
            socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(30);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            deadline.CancelAfter(provider.Timeout);
            try
            {
                await socket.ConnectAsync(UpstreamUri(provider, route.UpstreamModel), deadline.Token);
                return (socket, provider);
            }
            catch (Exception ex) when (ex is WebSocketException or HttpRequestException or OperationCanceledException)
            {
                var status = (int)socket.HttpStatusCode;
                if (status is StatusCodes.Status401Unauthorized or StatusCodes.Status403Forbidden) keys.Rejected(providerKey, status);
                LogConnectFailed(provider.Name, status, ex.GetType().Name);
                socket.Dispose();
                if (context.RequestAborted.IsCancellationRequested) return null;
            }
        }
        return null;
    }

    /// <summary>https://api.openai.com/v1 → wss://api.openai.com/v1/realtime?model=gpt-realtime (http → ws for local fakes).</summary>
    internal static Uri UpstreamUri(Provider provider, string upstreamModel)
    {
        var url = new UriBuilder(provider.Url("realtime"))
        {
            Scheme = provider.BaseUrl.Scheme == Uri.UriSchemeHttp ? "ws" : "wss",
            Query = "model=" + Uri.EscapeDataString(upstreamModel),
        };
        return url.Uri;
    }

    private static string? KeyFromProtocols(IList<string> offered)
    {
        foreach (var protocol in offered)
            if (protocol.StartsWith(KeyProtocolPrefix, StringComparison.Ordinal)) return protocol[KeyProtocolPrefix.Length..];
        return null;
    }

    private static string? BearerSecret(HttpContext context)
    {
        var value = context.Request.Headers.Authorization.ToString().AsSpan().Trim();
        return value.Length > 7 ? value[7..].Trim().ToString() : null;
    }

    private static bool Contains(IList<string> offered, string protocol)
    {
        foreach (var p in offered)
            if (string.Equals(p, protocol, StringComparison.Ordinal)) return true;
        return false;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Realtime session {SessionId} opened: {Model} on {Provider}, key {KeyPrefix}")]
    private partial void LogOpened(string sessionId, string model, string provider, string keyPrefix);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Realtime connection to {Provider} failed (HTTP {Status}, {Error})")]
    private partial void LogConnectFailed(string provider, int status, string error);
}
