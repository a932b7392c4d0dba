using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Alerts;

/// <summary>Usage alerts ("Alerts").</summary>
public sealed class AlertsOptions
{
    public const string Section = "Alerts";

    /// <summary>
    /// How often the alerts job compares every account's month spend with its budget and its balance
    /// with its low-balance amount. Also the longest a hard stop lags behind the spend that crossed 100 %.
    /// </summary>
    [Range(5, 3600)]
    public int CheckIntervalSeconds { get; set; } = 60;

    /// <summary>How often each instance re-reads the hard-stopped accounts even without a notice (a safety net for missed notices).</summary>
    [Range(5, 3600)]
    public int StopsRefreshSeconds { get; set; } = 30;
}
