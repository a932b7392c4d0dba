using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Gateway;

public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>Largest request body accepted (413 above it).</summary>
    [Range(1024, 100 * 1024 * 1024)]
    public long MaxRequestBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Largest non-streamed upstream body relayed (RELIABILITY R6); bigger is a 502.</summary>
    [Range(1024, 100 * 1024 * 1024)]
    public int MaxUpstreamResponseBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>Hard cap on one streamed response (RELIABILITY F1).</summary>
    [Range(1, 3600)]
    public int MaxStreamSeconds { get; set; } = 600;

    /// <summary>
    /// Streams one instance relays at once; more get 503 + Retry-After. Keep it below fly.toml's
    /// <c>hard_limit</c>, so overload is answered by the app in OpenAI's shape rather than queued by the proxy.
    /// </summary>
    [Range(1, 100_000)]
    public int MaxConcurrentStreams { get; set; } = 400;

    /// <summary>
    /// At shutdown, streams still open this many seconds before the end of the host's shutdown window
    /// (<c>shutdownTimeoutSeconds</c>, 110 s) are ended with an SSE error and billed; the margin is for the
    /// usage writer's final drain and the lease return.
    /// </summary>
    [Range(1, 600)]
    public int ShutdownMarginSeconds { get; set; } = 10;
}
