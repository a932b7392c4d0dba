using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>A provider that went down or came back in one check.</summary>
public sealed record HealthTransition(string Provider, HealthState From, HealthState To);

/// <summary>
/// One health check (what <see cref="ProviderHealthJob"/> runs): probe every configured provider,
/// read the live traffic of the passive window, and in one transaction record the probes, move each
/// provider's and route's state, and queue the admin alerts. The provider rows are locked
/// (<c>for update</c>) while a check decides, so two checks at once (two instances, a manual trigger
/// during a scheduled one) serialise: the second sees the first's state and finds no transition to alert
/// again. Each transition into or out of <see cref="HealthState.Down"/> queues one e-mail per admin, in
/// the same transaction as the state change, so it is sent once or not at all.
/// </summary>
public sealed partial class HealthChecker(AppDbContext db, ProviderRegistry registry, ProviderKeyRing keys, ModelCatalog catalog, EmailOutbox outbox,
    TimeProvider clock, IOptions<ProviderHealthOptions> options, IOptions<EmailOptions> emailOptions, ILogger<HealthChecker> logger)
{
    public async Task<IReadOnlyList<HealthTransition>> CheckAsync(string instanceId, CancellationToken ct)
    {
        var o = options.Value;
        var providers = registry.ByName.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        if (providers.Count == 0) return [];
        var probes = await Task.WhenAll(providers.Select(p => ProviderProber.ProbeAsync(p, keys.Peek(p.Name)?.Secret, TimeSpan.FromSeconds(o.ProbeTimeoutSeconds), ct)));

        var now = clock.GetUtcNow();
        var since = now.AddSeconds(-o.PassiveWindowSeconds);
        var traffic = await db.Set<ProviderTraffic>().AsNoTracking().Where(t => t.BucketStart >= since)
            .GroupBy(t => new { t.Provider, t.UpstreamModel })
            .Select(g => new { g.Key.Provider, g.Key.UpstreamModel, Successes = g.Sum(t => t.Successes), Failures = g.Sum(t => t.Failures) })
            .ToListAsync(ct);

        var transitions = new List<HealthTransition>();
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var names = providers.Select(p => p.Name).ToArray();
        await db.Database.ExecuteSqlAsync($"""
            insert into provider_health (provider, state, probe_state, consecutive_failures, consecutive_successes, recent_calls, recent_failures, changed_at, version)
            select name, 'Healthy', 'Healthy', 0, 0, 0, 0, now(), 0 from unnest({names}) as name
            on conflict (provider) do nothing
            """, ct);
        var records = await db.Set<ProviderHealthRecord>()
            .FromSql($"select * from provider_health where provider = any({names}) order by provider for update").ToListAsync(ct);

        foreach (var probe in probes)
        {
            db.Set<ProviderProbe>().Add(new ProviderProbe
            {
                Provider = probe.Provider, CheckedAt = now, Ok = probe.Ok, StatusCode = probe.StatusCode, LatencyMs = probe.LatencyMs,
                Error = probe.Error is { Length: > 500 } e ? e[..500] : probe.Error, InstanceId = instanceId,
            });
            var record = records.Single(r => r.Provider == probe.Provider);
            (record.ProbeState, record.ConsecutiveFailures, record.ConsecutiveSuccesses) =
                HealthRules.AfterProbe(record.ProbeState, record.ConsecutiveFailures, record.ConsecutiveSuccesses, probe.Ok, o);
            record.RecentCalls = traffic.Where(t => t.Provider == probe.Provider).Sum(t => t.Successes + t.Failures);
            record.RecentFailures = traffic.Where(t => t.Provider == probe.Provider).Sum(t => t.Failures);
            record.LastProbeAt = now;
            record.LastError = probe.Error;
            var state = HealthRules.Worst(record.ProbeState, HealthRules.FromTraffic(record.RecentCalls, record.RecentFailures, o));
            if (state == record.State) continue;
            transitions.Add(new HealthTransition(record.Provider, record.State, state));
            record.State = state;
            record.ChangedAt = now;
            record.Version++;
        }

        await UpdateRoutesAsync(records, traffic.Select(t => (t.Provider, t.UpstreamModel, t.Successes, t.Failures)).ToList(), now, o, ct);
        await QueueAlertsAsync(transitions, records, ct);

        await db.SaveChangesAsync(ct);
        await CacheNotifications.PublishAsync((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)transaction.GetDbTransaction(),
            HealthSnapshot.Notice, ct);
        await transaction.CommitAsync(ct);

        foreach (var t in transitions) LogTransition(t.Provider, t.From, t.To);
        return transitions;
    }

    /// <summary>Every route the catalogue can use, and every route with recent traffic: the worse of its provider's state and its own traffic's.</summary>
    private async Task UpdateRoutesAsync(List<ProviderHealthRecord> providers, List<(string Provider, string Model, long Successes, long Failures)> traffic,
        DateTimeOffset now, ProviderHealthOptions o, CancellationToken ct)
    {
        var keys = catalog.All.SelectMany(m => m.Routes).Select(r => (r.Provider, Model: r.UpstreamModel))
            .Concat(traffic.Select(t => (t.Provider, t.Model))).Distinct().ToList();
        var existing = (await db.Set<RouteHealthRecord>().ToListAsync(ct)).ToDictionary(r => (r.Provider, Model: r.UpstreamModel));
        foreach (var key in keys.Concat(existing.Keys).Distinct())
        {
            var providerState = providers.FirstOrDefault(p => p.Provider == key.Provider)?.State ?? HealthState.Healthy;
            var seen = traffic.Where(t => t.Provider == key.Provider && t.Model == key.Model).ToList();
            var calls = seen.Sum(t => t.Successes + t.Failures);
            var failures = seen.Sum(t => t.Failures);
            var state = HealthRules.Worst(providerState, HealthRules.FromTraffic(calls, failures, o));
            if (!existing.TryGetValue(key, out var row))
            {
                row = new RouteHealthRecord { Provider = key.Provider, UpstreamModel = key.Model, State = state, ChangedAt = now };
                db.Set<RouteHealthRecord>().Add(row);
            }
            else if (row.State != state)
            {
                row.State = state;
                row.ChangedAt = now;
            }
        }
    }

    /// <summary>One e-mail per admin for each provider that went down or came back (degraded alone alerts no one).</summary>
    private async Task QueueAlertsAsync(List<HealthTransition> transitions, List<ProviderHealthRecord> records, CancellationToken ct)
    {
        var alerts = transitions.Where(t => (t.To == HealthState.Down) != (t.From == HealthState.Down)).ToList();
        if (alerts.Count == 0) return;
        var admins = await db.Users.AsNoTracking()
            .Where(u => u.Email != null && db.UserRoles.Any(ur => ur.UserId == u.Id && db.Roles.Any(r => r.Id == ur.RoleId && r.Name == Roles.Admin)))
            .Select(u => new { u.Id, Email = u.Email! }).ToListAsync(ct);
        var statusUrl = AccountLinks.ForJob(emailOptions.Value, "/status");
        foreach (var alert in alerts)
        {
            var record = records.Single(r => r.Provider == alert.Provider);
            var content = alert.To == HealthState.Down
                ? HealthEmails.ProviderDown(alert.Provider, record.LastError, record.RecentCalls, record.RecentFailures, statusUrl)
                : HealthEmails.ProviderRecovered(alert.Provider, alert.To, statusUrl);
            foreach (var admin in admins) outbox.Enqueue(admin.Email, content, admin.Id);
        }
    }

    /// <summary>Deletes probes past <see cref="ProviderHealthOptions.ProbeHistoryDays"/> and traffic buckets older than a day (<see cref="ProviderHealthPruneJob"/>, daily).</summary>
    public async Task PruneAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var o = options.Value;
        var probesBefore = now.AddDays(-o.ProbeHistoryDays);
        var trafficBefore = now.AddDays(-1);
        await db.Set<ProviderProbe>().Where(p => p.CheckedAt < probesBefore).ExecuteDeleteAsync(ct);
        await db.Set<ProviderTraffic>().Where(t => t.BucketStart < trafficBefore).ExecuteDeleteAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} health changed from {From} to {To}")]
    private partial void LogTransition(string provider, HealthState from, HealthState to);
}
