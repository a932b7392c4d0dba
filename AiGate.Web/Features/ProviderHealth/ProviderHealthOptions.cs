using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>How providers are checked and when a provider or route counts as degraded or down (section <c>ProviderHealth</c>).</summary>
public sealed class ProviderHealthOptions
{
    public const string Section = "ProviderHealth";

    /// <summary>How often the health-check job probes every provider (one probe per provider per fire, cluster-wide).</summary>
    [Range(1, 3600)]
    public int ProbeIntervalSeconds { get; set; } = 30;

    /// <summary>Longest wait for a probe's answer; no answer counts as a failure.</summary>
    [Range(1, 120)]
    public int ProbeTimeoutSeconds { get; set; } = 10;

    /// <summary>Consecutive failed probes that make a provider down (RELIABILITY J4: 3). Fewer make it degraded.</summary>
    [Range(1, 100)]
    public int FailuresToDown { get; set; } = 3;

    /// <summary>Consecutive good probes that bring a down provider back (RELIABILITY J4: 2).</summary>
    [Range(1, 100)]
    public int SuccessesToRecover { get; set; } = 2;

    /// <summary>Live traffic looked at when judging a provider or route (passive checks).</summary>
    [Range(10, 3600)]
    public int PassiveWindowSeconds { get; set; } = 120;

    /// <summary>Fewer calls than this in the window say nothing either way (no twitching on one error).</summary>
    [Range(1, 100_000)]
    public int PassiveMinCalls { get; set; } = 10;

    /// <summary>Share of failed calls in the window from which a route or provider is degraded.</summary>
    [Range(0.01, 1.0)]
    public double DegradedFailureRatio { get; set; } = 0.2;

    /// <summary>Share of failed calls in the window from which a route or provider is down.</summary>
    [Range(0.01, 1.0)]
    public double DownFailureRatio { get; set; } = 0.5;

    /// <summary>How often each instance sends its traffic counts and reloads the health snapshot routing reads.</summary>
    [Range(1, 300)]
    public int SnapshotRefreshSeconds { get; set; } = 5;

    /// <summary>Probe results kept for the status page's uptime (it shows up to 7 days).</summary>
    [Range(8, 3650)]
    public int ProbeHistoryDays { get; set; } = 30;
}
