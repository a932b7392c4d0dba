using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Gateway;

public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>Largest chat request body accepted (413 above it; images and audio travel inline as base64).</summary>
    [Range(1024, 100 * 1024 * 1024)]
    public long MaxRequestBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Largest embeddings request body accepted (text only: OpenAI caps a request at 300,000 tokens, about 1.2 MB).</summary>
    [Range(1024, 100 * 1024 * 1024)]
    public long MaxEmbeddingsRequestBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// Requests one account may have in flight on one instance; more get 429 before their body is read.
    /// Bounds what one account's open calls hold of the instance (memory, upstream connections).
    /// </summary>
    [Range(1, 100_000)]
    public int MaxConcurrentRequestsPerAccount { get; set; } = 256;

    /// <summary>
    /// Input tokens reserved for each image part of a chat request, whatever its bytes: a URL is a few
    /// bytes, and a provider counts an image by its pixels (OpenAI up to ~2,500 tokens at high detail,
    /// Anthropic ~1,600, Gemini 258 per 768 px tile, 16 tiles at most). A part that costs more is still
    /// billed in full; the excess is settled as debt.
    /// </summary>
    [Range(0, 1_000_000)]
    public int ImagePartWorstCaseTokens { get; set; } = 4_500;

    /// <summary>
    /// Input tokens reserved for each audio or file (PDF) part: about ten minutes of audio at Gemini's 32
    /// tokens a second, or some thirty pages. Longer media is billed in full and the excess settled as debt.
    /// </summary>
    [Range(0, 10_000_000)]
    public int AudioOrFilePartWorstCaseTokens { get; set; } = 20_000;

    /// <summary>Largest non-streamed upstream body relayed (RELIABILITY R6); bigger is a 502.</summary>
    [Range(1024, 100 * 1024 * 1024)]
    public int MaxUpstreamResponseBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>
    /// After a client leaves mid-stream, how long the relay keeps reading the upstream (without sending) to reach the
    /// provider's own usage report (RELIABILITY F5); 0 turns draining off, and the stream is billed from our count.
    /// </summary>
    [Range(0, 120)]
    public int StreamDrainSeconds { get; set; } = 30;

    /// <summary>Drains one instance runs at once; a client that leaves while all are busy is billed from our count at once.</summary>
    [Range(0, 10_000)]
    public int MaxStreamDrains { get; set; } = 100;

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

    /// <summary>
    /// Credit a Realtime session holds while it runs (<c>/api/v1/realtime</c>), renewed after each response; 0 = the
    /// model's worst case for one response (<see cref="RealtimePromptAllowanceTokens"/> at the audio input price plus
    /// its max output at the dearer output price).
    /// </summary>
    [Range(0, long.MaxValue)]
    public long RealtimeReserveMicros { get; set; }

    /// <summary>Input tokens one Realtime response is assumed to read at most, for the computed reservation (capped at the context length).</summary>
    [Range(0, 10_000_000)]
    public int RealtimePromptAllowanceTokens { get; set; } = 16_000;

    /// <summary>A Realtime session with no frame either way for this long is closed (code 4000).</summary>
    [Range(1, 86_400)]
    public int RealtimeIdleSeconds { get; set; } = 120;

    /// <summary>A Realtime session is closed (code 4001) after this long, whatever it is doing.</summary>
    [Range(1, 24 * 60)]
    public int RealtimeMaxSessionMinutes { get; set; } = 30;

    /// <summary>
    /// When a Realtime session ends with a response still running (client gone, limit, shutdown), how long the relay
    /// waits for the provider's <c>response.done</c> (after sending <c>response.cancel</c>) to bill it; then it bills what it saw.
    /// </summary>
    [Range(0, 60)]
    public int RealtimeDrainSeconds { get; set; } = 5;
}
