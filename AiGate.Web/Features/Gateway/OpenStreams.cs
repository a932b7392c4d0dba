using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// This instance's streamed responses: a cap on how many run at once (<see cref="GatewayOptions.MaxConcurrentStreams"/>;
/// more get 503 with Retry-After, so Fly's proxy sends them to another Machine), and the end of all of them at
/// shutdown. On SIGTERM open streams get until the host's shutdown window minus
/// <see cref="GatewayOptions.ShutdownMarginSeconds"/> to finish; then <see cref="MustEnd"/> fires and each
/// relay ends its stream with an SSE error event and <c>[DONE]</c>, billed for what was forwarded, leaving the
/// margin for the usage writer's final drain and the lease return before the platform's kill.
/// </summary>
public sealed class OpenStreams : IDisposable
{
    private readonly CancellationTokenSource _mustEnd = new();
    private readonly int _max;
    private readonly int _maxDrains;
    private int _open;
    private int _draining;
    private volatile bool _stopping;

    public OpenStreams(IOptions<GatewayOptions> options, IOptions<HostOptions> host, IHostApplicationLifetime lifetime)
    {
        _max = options.Value.MaxConcurrentStreams;
        _maxDrains = options.Value.StreamDrainSeconds > 0 ? options.Value.MaxStreamDrains : 0;
        var grace = host.Value.ShutdownTimeout - TimeSpan.FromSeconds(options.Value.ShutdownMarginSeconds);
        lifetime.ApplicationStopping.Register(() =>
        {
            _stopping = true;
            _mustEnd.CancelAfter(grace > TimeSpan.Zero ? grace : TimeSpan.Zero);
        });
    }

    /// <summary>Fires when the streams still open must end (shutdown window nearly over).</summary>
    public CancellationToken MustEnd => _mustEnd.Token;

    /// <summary>A slot for one stream (dispose it when the stream ends); <see cref="Slot.Granted"/> is false when none is free.</summary>
    public Slot TryOpen(bool stream)
    {
        if (!stream) return default;
        if (_stopping) return new Slot(null);
        if (Interlocked.Increment(ref _open) > _max)
        {
            Interlocked.Decrement(ref _open);
            return new Slot(null);
        }
        return new Slot(this);
    }

    /// <summary>
    /// A place for one post-disconnect drain (RELIABILITY F5); false when they are off, all taken, or the instance is
    /// stopping. Pair a true with <see cref="EndDrain"/>.
    /// </summary>
    public bool TryStartDrain()
    {
        if (_stopping) return false;
        if (Interlocked.Increment(ref _draining) <= _maxDrains) return true;
        Interlocked.Decrement(ref _draining);
        return false;
    }

    public void EndDrain() => Interlocked.Decrement(ref _draining);

    /// <summary>The refusal: 503 in OpenAI's envelope with Retry-After (an overloaded or stopping instance, not the caller's fault).</summary>
    public Task RefuseAsync(HttpContext context) => ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
        _stopping
            ? "This server is restarting and takes no new streams. Please retry."
            : "This server has as many streams open as it serves at once. Please retry shortly.",
        "server_error", "server_overloaded", retryAfter: TimeSpan.FromSeconds(1));

    public void Dispose() => _mustEnd.Dispose();

    public readonly struct Slot : IDisposable
    {
        private readonly OpenStreams? _owner;
        private readonly bool _refused;

        internal Slot(OpenStreams? owner)
        {
            _owner = owner;
            _refused = owner is null;
        }

        /// <summary>True for a granted stream slot and for calls that are not streams.</summary>
        public bool Granted => !_refused;

        public void Dispose()
        {
            if (_owner is not null) Interlocked.Decrement(ref _owner._open);
        }
    }
}
