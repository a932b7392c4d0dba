using AiGate.Web.Data;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Features.Providers;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// The configured providers (from configuration: kind and base URL, never keys), their health from the health
/// checks, live traffic's error rate over the last 15 minutes and the probes' latency over the last hour, and a
/// runtime switch that every instance honours within seconds (a disabled provider's routes leave the catalogue).
/// </summary>
public sealed class ProvidersModel(ProviderRegistry registry, AppDbContext db, CatalogAdmin admin, TimeProvider clock) : PageModel
{
    public IReadOnlyList<ProviderRow> Providers { get; private set; } = [];
    [TempData] public string? Notice { get; set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var trafficSince = now.AddMinutes(-15);
        var probesSince = now.AddHours(-1);
        var settings = await db.Set<ProviderSetting>().AsNoTracking().ToDictionaryAsync(s => s.Provider, StringComparer.Ordinal, ct);
        var health = await db.Set<ProviderHealthRecord>().AsNoTracking().ToDictionaryAsync(h => h.Provider, StringComparer.Ordinal, ct);
        var traffic = await db.Set<ProviderTraffic>().AsNoTracking().Where(t => t.BucketStart >= trafficSince)
            .GroupBy(t => t.Provider).Select(g => new { Provider = g.Key, Successes = g.Sum(t => t.Successes), Failures = g.Sum(t => t.Failures) })
            .ToDictionaryAsync(t => t.Provider, StringComparer.Ordinal, ct);
        var probes = await db.Set<ProviderProbe>().AsNoTracking().Where(p => p.CheckedAt >= probesSince)
            .GroupBy(p => p.Provider).Select(g => new { Provider = g.Key, Count = g.Count(), AvgMs = g.Average(p => (double)p.LatencyMs), Ok = g.Count(p => p.Ok) })
            .ToDictionaryAsync(p => p.Provider, StringComparer.Ordinal, ct);
        var routes = await db.Set<ModelRoute>().AsNoTracking().GroupBy(r => r.Provider).Select(g => new { Provider = g.Key, Count = g.Count() })
            .ToDictionaryAsync(r => r.Provider, r => r.Count, StringComparer.Ordinal, ct);
        Providers = [.. registry.ByName.Values.OrderBy(p => p.Name, StringComparer.Ordinal).Select(p =>
        {
            var h = health.GetValueOrDefault(p.Name);
            var t = traffic.GetValueOrDefault(p.Name);
            var pr = probes.GetValueOrDefault(p.Name);
            var calls = t is null ? 0 : t.Successes + t.Failures;
            return new ProviderRow(p.Name, p.Kind.ToString().ToLowerInvariant(), PublicUrl(p.BaseUrl), settings.GetValueOrDefault(p.Name)?.Enabled ?? true,
                h?.State, h?.LastProbeAt, h?.LastError, calls, calls == 0 ? null : (double)t!.Failures / calls,
                pr is null ? null : (int)Math.Round(pr.AvgMs), pr?.Count ?? 0, routes.GetValueOrDefault(p.Name));
        })];
    }

    public async Task<IActionResult> OnPostToggleAsync(string name, bool enable, string? reason, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(name) || !registry.ByName.ContainsKey(name)) return NotFound();
        var changed = await admin.SetProviderEnabledAsync(name, enable, reason?.Trim(), ct);
        Notice = !changed ? $"{name} was already {(enable ? "enabled" : "disabled")}."
            : enable ? $"{name} is enabled: its routes are used again on every instance within seconds."
            : $"{name} is disabled: every instance stops routing to it within seconds.";
        return RedirectToPage();
    }

    /// <summary>Scheme, host, port and path only: a base URL may carry credentials or a key in its user info or query.</summary>
    private static string PublicUrl(Uri url) => url.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);

    public sealed record ProviderRow(string Name, string Kind, string BaseUrl, bool Enabled, HealthState? State, DateTimeOffset? LastProbeAt, string? LastError,
        long RecentCalls, double? ErrorRate, int? ProbeLatencyMs, int Probes, int Routes);
}
