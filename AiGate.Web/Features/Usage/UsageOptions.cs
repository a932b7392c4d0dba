using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Usage;

/// <summary>Usage rollups and raw retention ("Usage").</summary>
public sealed class UsageOptions
{
    public const string Section = "Usage";

    /// <summary>How often the rollup job folds new usage events into the hourly and daily rollups.</summary>
    [Range(5, 3600)]
    public int RollupIntervalSeconds { get; set; } = 300;

    /// <summary>
    /// Raw usage events (the request log) are deleted once they are older than this many whole UTC days
    /// and already rolled up; the rollups are kept.
    /// </summary>
    [Range(1, 3650)]
    public int RawRetentionDays { get; set; } = 90;
}
