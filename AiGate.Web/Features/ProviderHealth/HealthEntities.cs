using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>Worst last: the numeric order is used to combine states (the worse one wins) and to rank routes.</summary>
public enum HealthState { Healthy = 0, Degraded = 1, Down = 2 }

/// <summary>One active check of a provider (a cheap call such as listing models), written by <see cref="HealthChecker"/>.</summary>
public sealed class ProviderProbe
{
    public long Id { get; set; }
    public required string Provider { get; set; }
    public DateTimeOffset CheckedAt { get; set; }
    public bool Ok { get; set; }
    /// <summary>The upstream's HTTP status, or null when no answer came (timeout, connection refused).</summary>
    public int? StatusCode { get; set; }
    public int LatencyMs { get; set; }
    /// <summary>What went wrong, in our words (status and a short reason); never request headers or keys.</summary>
    public string? Error { get; set; }
    /// <summary>The scheduler instance that ran the probe.</summary>
    public required string InstanceId { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<ProviderProbe>
    {
        public void Configure(EntityTypeBuilder<ProviderProbe> b)
        {
            b.ToTable("provider_probes");
            b.Property(p => p.Provider).HasMaxLength(64);
            b.Property(p => p.Error).HasMaxLength(500);
            b.Property(p => p.InstanceId).HasMaxLength(200);
            b.HasIndex(p => p.CheckedAt);
        }
    }
}

/// <summary>
/// A provider's current health: the probe state machine (consecutive failures and successes) combined
/// with live traffic. <see cref="Version"/> counts transitions, so each one is alerted exactly once.
/// </summary>
public sealed class ProviderHealthRecord
{
    public required string Provider { get; set; }
    public HealthState State { get; set; }
    /// <summary>What the probes alone say (RELIABILITY J4: down after 3 failures in a row, healthy after 2 successes).</summary>
    public HealthState ProbeState { get; set; }
    public int ConsecutiveFailures { get; set; }
    public int ConsecutiveSuccesses { get; set; }
    /// <summary>Calls and failures of live traffic in the passive window at the last evaluation.</summary>
    public long RecentCalls { get; set; }
    public long RecentFailures { get; set; }
    public DateTimeOffset ChangedAt { get; set; }
    public DateTimeOffset? LastProbeAt { get; set; }
    public string? LastError { get; set; }
    public int Version { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<ProviderHealthRecord>
    {
        public void Configure(EntityTypeBuilder<ProviderHealthRecord> b)
        {
            b.ToTable("provider_health");
            b.HasKey(p => p.Provider);
            b.Property(p => p.Provider).HasMaxLength(64);
            b.Property(p => p.State).HasConversion<string>().HasMaxLength(16);
            b.Property(p => p.ProbeState).HasConversion<string>().HasMaxLength(16);
            b.Property(p => p.LastError).HasMaxLength(500);
        }
    }
}

/// <summary>A route's health (provider + upstream model): the provider's state combined with the route's own traffic.</summary>
public sealed class RouteHealthRecord
{
    public required string Provider { get; set; }
    public required string UpstreamModel { get; set; }
    public HealthState State { get; set; }
    public DateTimeOffset ChangedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<RouteHealthRecord>
    {
        public void Configure(EntityTypeBuilder<RouteHealthRecord> b)
        {
            b.ToTable("route_health");
            b.HasKey(r => new { r.Provider, r.UpstreamModel });
            b.Property(r => r.Provider).HasMaxLength(64);
            b.Property(r => r.UpstreamModel).HasMaxLength(128);
            b.Property(r => r.State).HasConversion<string>().HasMaxLength(16);
        }
    }
}

/// <summary>
/// Live traffic outcomes per route and minute, summed over every instance: each instance adds what its
/// router saw every few seconds (<see cref="HealthSnapshot"/>), off the request path.
/// </summary>
public sealed class ProviderTraffic
{
    public required string Provider { get; set; }
    public required string UpstreamModel { get; set; }
    public DateTimeOffset BucketStart { get; set; }
    public long Successes { get; set; }
    public long Failures { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<ProviderTraffic>
    {
        public void Configure(EntityTypeBuilder<ProviderTraffic> b)
        {
            b.ToTable("provider_traffic");
            b.HasKey(t => new { t.Provider, t.UpstreamModel, t.BucketStart });
            b.Property(t => t.Provider).HasMaxLength(64);
            b.Property(t => t.UpstreamModel).HasMaxLength(128);
            b.HasIndex(t => t.BucketStart);
        }
    }
}
