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
}
