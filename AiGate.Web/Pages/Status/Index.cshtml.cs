using AiGate.Web.Data;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Features.Providers;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Status;

/// <summary>
/// The public status page: each configured provider's current state and its uptime over the last 24 hours
/// and 7 days, measured as the share of successful probes. Shows no errors, addresses or keys.
/// </summary>
[AllowAnonymous]
public sealed class IndexModel(AppDbContext db, ProviderRegistry registry, TimeProvider clock) : PageModel
{
    public IReadOnlyList<ProviderRow> Providers { get; private set; } = [];
    public DateTimeOffset Now { get; private set; }

    /// <summary>The worst state of any checked provider, or null when nothing was checked yet.</summary>
    public HealthState? Overall
    {
        get
        {
            var known = Providers.Where(p => p.State is not null).Select(p => p.State!.Value).ToList();
            return known.Count == 0 ? null : known.Max();
        }
    }

    public async Task OnGetAsync(CancellationToken ct)
    {
        Now = clock.GetUtcNow();
        var dayAgo = Now.AddHours(-24);
        var weekAgo = Now.AddDays(-7);
        var states = await db.Set<ProviderHealthRecord>().AsNoTracking().ToDictionaryAsync(h => h.Provider, ct);
        // Uptime over the week and the day, and the day's average latency of passed probes, in one pass over the probes.
        var uptime = await db.Database.SqlQuery<UptimeRow>($"""
            select provider as "Provider", count(*)::int as "Week", count(*) filter (where ok)::int as "WeekOk",
                   count(*) filter (where checked_at >= {dayAgo})::int as "Day", count(*) filter (where checked_at >= {dayAgo} and ok)::int as "DayOk",
                   avg(latency_ms) filter (where checked_at >= {dayAgo} and ok)::float8 as "Latency"
            from provider_probes where checked_at >= {weekAgo} group by provider
            """).ToDictionaryAsync(u => u.Provider, ct);
        // One row per provider and hour of the last 24 hours that had probes, for the hour strip.
        var hours = await db.Database.SqlQuery<HourRow>($"""
            select provider as "Provider", date_trunc('hour', checked_at) as "Hour", count(*)::int as "Total", count(*) filter (where ok)::int as "Ok"
            from provider_probes where checked_at >= {dayAgo} group by 1, 2
            """).ToListAsync(ct);

        var firstHour = new DateTimeOffset(Now.Year, Now.Month, Now.Day, Now.Hour, 0, 0, TimeSpan.Zero).AddHours(-23);
        Providers = [.. registry.ByName.Keys.Order(StringComparer.Ordinal).Select(name =>
        {
            states.TryGetValue(name, out var state);
            uptime.TryGetValue(name, out var u);
            var strip = Enumerable.Range(0, 24).Select(i =>
            {
                var hour = firstHour.AddHours(i);
                var row = hours.FirstOrDefault(h => h.Provider == name && new DateTimeOffset(DateTime.SpecifyKind(h.Hour, DateTimeKind.Utc)) == hour);
                return new HourCell(hour, row?.Total ?? 0, row?.Ok ?? 0);
            }).ToList();
            return new ProviderRow(name, state?.State, state?.ChangedAt, state?.LastProbeAt,
                Percent(u?.DayOk, u?.Day), Percent(u?.WeekOk, u?.Week),
                u?.Latency is { } latency ? (int)Math.Round(latency) : null, strip);
        })];
    }

    private static double? Percent(int? ok, int? total) => total is > 0 ? 100.0 * ok!.Value / total.Value : null;

    public static string Label(HealthState? state) => state switch
    {
        HealthState.Healthy => "Operational",
        HealthState.Degraded => "Degraded",
        HealthState.Down => "Down",
        _ => "Not checked yet",
    };

    public static string Css(HealthState? state) => state?.ToString().ToLowerInvariant() ?? "unknown";

    public sealed record ProviderRow(string Name, HealthState? State, DateTimeOffset? Since, DateTimeOffset? LastCheckedAt,
        double? UptimeDay, double? UptimeWeek, int? LatencyMs, IReadOnlyList<HourCell> Hours);

    public sealed record HourCell(DateTimeOffset Hour, int Total, int Ok)
    {
        /// <summary>A CSS class: no probes, all good, some failed, or mostly failed.</summary>
        public string Level => Total == 0 ? "none" : Ok == Total ? "ok" : Ok * 2 >= Total ? "partial" : "bad";
    }

    public sealed class UptimeRow
    {
        public string Provider { get; set; } = "";
        public int Week { get; set; }
        public int WeekOk { get; set; }
        public int Day { get; set; }
        public int DayOk { get; set; }
        public double? Latency { get; set; }
    }

    public sealed class HourRow
    {
        public string Provider { get; set; } = "";
        public DateTime Hour { get; set; }
        public int Total { get; set; }
        public int Ok { get; set; }
    }
}
