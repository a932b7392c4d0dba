using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Infrastructure;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// One relayed Realtime session: two pump loops copy frames both ways as they come (text and binary, fragments and
/// all), a watch ends the session on a limit, and the money follows the provider's <c>response.done</c> events.
/// <para>
/// Money: the session always holds one reservation (the worst case of one response). Each <c>response.done</c>'s
/// usage is priced (<see cref="RealtimePricing"/>), settled against it as one usage row (request id
/// <c>{session id}:{sequence}</c>), and a new reservation is taken; when the balance cannot cover it, the client gets an
/// <c>error</c> event (<c>insufficient_credits</c>) and both sides are closed (1008). When the session ends with a response
/// still running, the relay sends <c>response.cancel</c> upstream and waits up to
/// <see cref="GatewayOptions.RealtimeDrainSeconds"/> for its <c>response.done</c> (a cancelled response reports its
/// usage); failing that it bills what it saw, flagged estimated: the input of the session's last reported response
/// (a conversation's context only grows) and the output it relayed (text: a token per 4 bytes; audio: 20 tokens a
/// second of 24 kHz PCM16). The last reservation is settled or released on every path.
/// </para>
/// <para>Close codes sent to the client: 1008 insufficient credits or key revoked, 1001 server shutdown, 4000 idle limit,
/// 4001 session time limit, 1011 provider failure; the provider's own close is passed on.</para>
/// </summary>
public sealed partial class RealtimeSession
{
    private const int BufferSize = 16 * 1024;
    /// <summary>Text events are inspected whole up to this size; a bigger one (never a <c>response.done</c> in practice) is relayed unread.</summary>
    private const int MaxInspectedBytes = 4 * 1024 * 1024;
    /// <summary>Output audio assumed to be 24 kHz PCM16 (48,000 bytes a second) at 20 tokens a second.</summary>
    private const long AudioBytesPerToken = 48_000 / 20;

    private readonly WebSocket _client;
    private readonly WebSocket _upstream;
    private readonly KeyIdentity _key;
    private readonly string _secret;
    private readonly ResolvedModel _model;
    private readonly string _provider;
    private readonly RealtimePricing _pricing;
    private readonly long _reserveMicros;
    private readonly Metering _metering;
    private readonly OpenStreams _streams;
    private readonly ApiKeyCache _keyCache;
    private readonly GatewayOptions _options;
    private readonly long _started;
    private readonly ILogger<RealtimeSession> _logger;
    private readonly SemaphoreSlim _clientSend = new(1, 1);
    private readonly SemaphoreSlim _upstreamSend = new(1, 1);
    private readonly TaskCompletionSource<EndReason> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _money = new();

    private Reservation? _reservation;
    private RealtimeUsage? _lastUsage;
    private int _sequence;
    private int _inFlight;
    private long _seenTextBytes;
    private long _seenAudioBytes;
    private long _lastActivity;
    private volatile bool _clientGone;
    private TaskCompletionSource _responsesDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebSocketCloseStatus? _upstreamCloseStatus;
    private string? _upstreamCloseDescription;

    internal RealtimeSession(WebSocket client, WebSocket upstream, KeyIdentity key, string secret, ResolvedModel model, string provider,
        RealtimePricing pricing, long reserveMicros, Reservation reservation, Metering metering, OpenStreams streams, ApiKeyCache keyCache,
        GatewayOptions options, long started, ILogger<RealtimeSession> logger)
    {
        _client = client;
        _upstream = upstream;
        _key = key;
        _secret = secret;
        _model = model;
        _provider = provider;
        _pricing = pricing;
        _reserveMicros = reserveMicros;
        _reservation = reservation;
        _metering = metering;
        _streams = streams;
        _keyCache = keyCache;
        _options = options;
        _started = started;
        _logger = logger;
        _lastActivity = Stopwatch.GetTimestamp();
    }

    public string Id { get; } = PrefixedId.New("rt_");

    /// <summary>Why the relay ended a session itself: the client's <c>error</c> event and the close code.</summary>
    private sealed record EndReason(WebSocketCloseStatus CloseStatus, string Type, string Code, string Message);

    public async Task RunAsync()
    {
        using var shutdown = _streams.MustEnd.Register(static state => ((RealtimeSession)state!)._ended.TrySetResult(new EndReason(
            WebSocketCloseStatus.EndpointUnavailable, "server_error", "server_shutdown",
            "The server is restarting; the session was closed. Reconnect to continue.")), this);
        var clientPump = PumpClientAsync();
        var upstreamPump = PumpUpstreamAsync();
        var watch = WatchAsync();
        try
        {
            var first = await Task.WhenAny(clientPump, upstreamPump, _ended.Task);
            if (first == upstreamPump)
            {
                // The provider closed or broke off: pass its close on; anything running is billed from what was seen.
                var status = _upstreamCloseStatus ?? WebSocketCloseStatus.InternalServerError;
                await CloseClientAsync(status, _upstreamCloseStatus is null ? "The provider's connection broke off." : _upstreamCloseDescription);
                await CloseUpstreamAsync();   // completes the provider's closing handshake
            }
            else
            {
                if (first == clientPump) await CloseClientAsync(_client.CloseStatus ?? WebSocketCloseStatus.NormalClosure, null);
                if (first == _ended.Task)
                {
                    var reason = await _ended.Task;
                    LogEnded(Id, reason.Code);
                    await SendErrorAsync(reason);
                    await CloseClientAsync(reason.CloseStatus, reason.Message);
                }
                await DrainAsync();
                await CloseUpstreamAsync();
            }
            await WaitBrieflyAsync(upstreamPump);
            await WaitBrieflyAsync(clientPump);
        }
        finally
        {
            // Both pumps have stopped before the last settlement: a response.done still being billed by the provider's
            // pump must not race the estimate of the same response.
            await _stop.CancelAsync();
            _ended.TrySetResult(new EndReason(WebSocketCloseStatus.NormalClosure, "", "", ""));
            _client.Abort();
            _upstream.Abort();
            try
            {
                await Task.WhenAll(clientPump, upstreamPump, watch);
            }
            finally
            {
                await FinishMoneyAsync();
                _stop.Dispose();
            }
        }
    }

    /// <summary>Client → provider, frame by frame. Returns when the client closes or goes away.</summary>
    private async Task PumpClientAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                var result = await _client.ReceiveAsync(buffer.AsMemory(), _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close) break;
                Touch();
                await _upstreamSend.WaitAsync(_stop.Token);
                try
                {
                    await _upstream.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, _stop.Token);
                }
                finally
                {
                    _upstreamSend.Release();
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            // The client broke off, or the provider's side can take no more: the session ends either way.
        }
        finally
        {
            _clientGone = true;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Provider → client, frame by frame; each whole text event is inspected for the money. Keeps reading after the client left (draining).</summary>
    private async Task PumpUpstreamAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        var message = new ArrayBufferWriter<byte>(BufferSize);
        var overflow = false;
        try
        {
            while (true)
            {
                var result = await _upstream.ReceiveAsync(buffer.AsMemory(), _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    _upstreamCloseStatus = _upstream.CloseStatus;
                    _upstreamCloseDescription = _upstream.CloseStatusDescription;
                    break;
                }
                Touch();
                if (!_clientGone) await SendToClientAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage);
                if (result.MessageType != WebSocketMessageType.Text) continue;
                if (!overflow && message.WrittenCount + result.Count <= MaxInspectedBytes) message.Write(buffer.AsSpan(0, result.Count));
                else overflow = true;
                if (!result.EndOfMessage) continue;
                if (!overflow) await InspectAsync(message.WrittenMemory);
                message.ResetWrittenCount();
                overflow = false;
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            // The provider broke off, or the session is over.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _responsesDone.TrySetResult();
        }
    }

    private async ValueTask SendToClientAsync(ReadOnlyMemory<byte> frame, WebSocketMessageType type, bool endOfMessage)
    {
        try
        {
            await _clientSend.WaitAsync(_stop.Token);
            try
            {
                await _client.SendAsync(frame, type, endOfMessage, _stop.Token);
            }
            finally
            {
                _clientSend.Release();
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            _clientGone = true;   // the provider's side is still read, to bill what is running
        }
    }

    /// <summary>Reads the event's top-level <c>type</c> (and <c>delta</c> of output deltas) with one reader pass; parses only <c>response.done</c>.</summary>
    private async ValueTask InspectAsync(ReadOnlyMemory<byte> json)
    {
        var (type, deltaLength) = TypeAndDelta(json.Span);
        switch (type)
        {
            case EventType.ResponseCreated:
                lock (_money)
                {
                    if (_inFlight++ == 0) _responsesDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                break;
            case EventType.TextDelta:
                Interlocked.Add(ref _seenTextBytes, deltaLength);
                break;
            case EventType.AudioDelta:
                Interlocked.Add(ref _seenAudioBytes, deltaLength / 4 * 3);
                break;
            case EventType.ResponseDone:
                await SettleResponseAsync(json);
                break;
        }
    }

    private async ValueTask SettleResponseAsync(ReadOnlyMemory<byte> json)
    {
        RealtimeUsage? usage = null;
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.TryGetProperty("response", out var response) && response.ValueKind == JsonValueKind.Object &&
                response.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
                usage = RealtimeUsage.FromJson(u);
        }
        catch (JsonException)
        {
            LogUnreadableUsage(Id);
        }
        lock (_money)
        {
            _inFlight = Math.Max(0, _inFlight - 1);
            if (_inFlight == 0)
            {
                _seenTextBytes = 0;
                _seenAudioBytes = 0;
            }
        }
        // A response.done without usage (a failed response) has nothing to bill; the reservation stays for the next one.
        if (usage is { } reported)
        {
            _lastUsage = reported;
            await BillAsync(reported);
            if (!await RenewAsync())
                _ended.TrySetResult(new EndReason(WebSocketCloseStatus.PolicyViolation, "insufficient_quota", "insufficient_credits",
                    "Your credit balance cannot cover another response; the session was closed. Add credits and reconnect."));
        }
        if (Volatile.Read(ref _inFlight) == 0) _responsesDone.TrySetResult();
    }

    /// <summary>Settles the held reservation at the response's cost as one usage row.</summary>
    private async ValueTask BillAsync(RealtimeUsage usage)
    {
        var reservation = Interlocked.Exchange(ref _reservation, null);
        if (reservation is null)
        {
            // The reservation could not be renewed and another response was still running: bill it against a zero-size one.
            var (outcome, zero) = await _metering.TryReserveAsync(_key, 0, CancellationToken.None);
            if (outcome != ReserveOutcome.Reserved || zero is null)
            {
                LogUnbilled(Id, _pricing.CostMicros(usage));
                return;
            }
            reservation = zero;
        }
        var sequence = Interlocked.Increment(ref _sequence);
        var metered = new MeteredOutcome(_provider, usage.ToTokenUsage(), StatusCodes.Status200OK, true, null);
        await _metering.SettleAsync($"{Id}:{sequence}", reservation, _key, _model.Id, metered, _pricing.CostMicros(usage),
            _pricing.ProviderCostMicros(usage), _started);
    }

    private async ValueTask<bool> RenewAsync()
    {
        var (outcome, next) = await _metering.TryReserveAsync(_key, _reserveMicros, CancellationToken.None);
        if (outcome != ReserveOutcome.Reserved || next is null) return false;
        if (Interlocked.CompareExchange(ref _reservation, next, null) is not null) _metering.Release(next);
        return true;
    }

    /// <summary>Idle and total limits, and the key: a revoked key is evicted from the cache by its notice, so the next lookup says so.</summary>
    private async Task WatchAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var maxAge = TimeSpan.FromMinutes(_options.RealtimeMaxSessionMinutes);
        var idle = TimeSpan.FromSeconds(_options.RealtimeIdleSeconds);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                if (Stopwatch.GetElapsedTime(_started) >= maxAge)
                    _ended.TrySetResult(new EndReason((WebSocketCloseStatus)4001, "invalid_request_error", "session_expired",
                        $"The session reached its limit of {_options.RealtimeMaxSessionMinutes} minutes and was closed. Reconnect to continue."));
                else if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastActivity)) >= idle)
                    _ended.TrySetResult(new EndReason((WebSocketCloseStatus)4000, "invalid_request_error", "session_idle_timeout",
                        $"No event for {_options.RealtimeIdleSeconds} seconds; the session was closed."));
                else if (!await KeyStillValidAsync())
                    _ended.TrySetResult(new EndReason(WebSocketCloseStatus.PolicyViolation, "invalid_request_error", "invalid_api_key",
                        "The API key of this session was revoked or disabled; the session was closed."));
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
    }

    private async ValueTask<bool> KeyStillValidAsync()
    {
        try
        {
            return await _keyCache.FindAsync(_secret, _stop.Token) is { Suspended: false } found && found.KeyId == _key.KeyId;
        }
        catch (DatabaseUnavailableException)
        {
            return true;   // the cache's own stale-if-error rule decides; an outage alone does not end sessions
        }
    }

    /// <summary>A response still running when the session ends: cancel it and wait (bounded) for the provider's usage report.</summary>
    private async Task DrainAsync()
    {
        if (Volatile.Read(ref _inFlight) == 0 || _upstream.State != WebSocketState.Open) return;
        try
        {
            await _upstreamSend.WaitAsync(_stop.Token);
            try
            {
                await _upstream.SendAsync("{\"type\":\"response.cancel\"}"u8.ToArray(), WebSocketMessageType.Text, true, _stop.Token);
            }
            finally
            {
                _upstreamSend.Release();
            }
            await _responsesDone.Task.WaitAsync(TimeSpan.FromSeconds(_options.RealtimeDrainSeconds));
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        {
            // Not reported in time: what was seen is billed.
        }
    }

    private async Task FinishMoneyAsync()
    {
        bool running;
        lock (_money) running = _inFlight > 0;
        if (running)
        {
            var last = _lastUsage ?? default;
            var textOut = (Interlocked.Read(ref _seenTextBytes) + 3) / 4;
            var audioOut = (Interlocked.Read(ref _seenAudioBytes) + AudioBytesPerToken - 1) / AudioBytesPerToken;
            var estimate = new RealtimeUsage(last.TextIn, last.AudioIn, last.CachedText, last.CachedAudio, textOut, audioOut, Estimated: true);
            LogEstimated(Id);
            await BillAsync(estimate);
        }
        if (Interlocked.Exchange(ref _reservation, null) is { } held) _metering.Release(held);
    }

    private async Task SendErrorAsync(EndReason reason)
    {
        if (_clientGone || _client.State != WebSocketState.Open) return;
        var buffer = new ArrayBufferWriter<byte>(256);
        await using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", "error");
            writer.WriteString("event_id", "event_" + Guid.NewGuid().ToString("N")[..20]);
            writer.WriteStartObject("error");
            writer.WriteString("type", reason.Type);
            writer.WriteString("code", reason.Code);
            writer.WriteString("message", reason.Message);
            writer.WriteNull("param");
            writer.WriteNull("event_id");
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        await SendToClientAsync(buffer.WrittenMemory, WebSocketMessageType.Text, true);
    }

    private async Task CloseClientAsync(WebSocketCloseStatus status, string? description)
    {
        if (_client.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        if (status == WebSocketCloseStatus.Empty) description = null;   // a close without a code carries no reason either
        try
        {
            await _clientSend.WaitAsync(_stop.Token);
            try
            {
                // A close reason is at most 123 bytes.
                await _client.CloseOutputAsync(status, Truncate(description), _stop.Token);
            }
            finally
            {
                _clientSend.Release();
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Gone already.
        }
    }

    private async Task CloseUpstreamAsync()
    {
        if (_upstream.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        try
        {
            await _upstreamSend.WaitAsync(_stop.Token);
            try
            {
                await _upstream.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, _stop.Token);
            }
            finally
            {
                _upstreamSend.Release();
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Gone already.
        }
    }

    /// <summary>Lets a pump see the other side's close (the closing handshake) for a moment before the sockets are aborted.</summary>
    private static async Task WaitBrieflyAsync(Task pump)
    {
        try
        {
            await pump.WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (TimeoutException)
        {
            // Aborted below.
        }
    }

    private static string? Truncate(string? text)
    {
        if (text is null || Encoding.UTF8.GetByteCount(text) <= 123) return text;
        var cut = text[..Math.Min(text.Length, 120)];
        while (Encoding.UTF8.GetByteCount(cut) > 120) cut = cut[..^1];
        return cut + "…";
    }

    private void Touch() => Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());

    internal enum EventType { Other, ResponseCreated, ResponseDone, TextDelta, AudioDelta }

    /// <summary>The event's top-level <c>type</c>, and the length of its top-level <c>delta</c> string (as sent, escapes and all).</summary>
    internal static (EventType Type, long DeltaLength) TypeAndDelta(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        var type = EventType.Other;
        long delta = 0;
        var sawType = false;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return (EventType.Other, 0);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    sawType = true;
                    type = reader.TokenType != JsonTokenType.String ? EventType.Other
                        : reader.ValueTextEquals("response.created"u8) ? EventType.ResponseCreated
                        : reader.ValueTextEquals("response.done"u8) ? EventType.ResponseDone
                        : reader.ValueTextEquals("response.output_text.delta"u8) || reader.ValueTextEquals("response.text.delta"u8) ? EventType.TextDelta
                        : reader.ValueTextEquals("response.output_audio.delta"u8) || reader.ValueTextEquals("response.audio.delta"u8) ? EventType.AudioDelta
                        : EventType.Other;
                    if (type is EventType.ResponseCreated or EventType.ResponseDone || (type == EventType.Other)) return (type, 0);
                    if (delta > 0) return (type, delta);
                }
                else if (reader.ValueTextEquals("delta"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String) delta = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
                    if (sawType) return (type, delta);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: relayed, not inspected.
        }
        return (type, delta);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Realtime session {SessionId} closed by the relay: {Reason}")]
    private partial void LogEnded(string sessionId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Realtime session {SessionId}: a response.done event could not be read")]
    private partial void LogUnreadableUsage(string sessionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Realtime session {SessionId} ended with a response running and no usage report; billed from what was relayed")]
    private partial void LogEstimated(string sessionId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Realtime session {SessionId}: a response of {CostMicros} micro-USD could not be billed (no credit could be reserved)")]
    private partial void LogUnbilled(string sessionId, long costMicros);
}
