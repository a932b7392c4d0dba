using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Usage;

/// <summary>What an hourly and a daily rollup row both hold: the owner, key, model and provider, and their sums.</summary>
public abstract class UsageRollupTotals
{
    public Guid UserId { get; set; }
    public Guid KeyId { get; set; }
    public required string ModelId { get; set; }
    public required string Provider { get; set; }
    public long Requests { get; set; }
    public long PromptTokens { get; set; }
    public long CompletionTokens { get; set; }
    public long CachedTokens { get; set; }
    public long CostMicros { get; set; }
    /// <summary>The sum of the calls' provider list cost; null when any call of the bucket has none (metered before migration 0016).</summary>
    public long? ProviderCostMicros { get; set; }
    public long Errors { get; set; }
    /// <summary>
    /// Calls per latency bucket (<see cref="LatencyHistogram.Bounds"/>), from which p50/p95 of any range and grouping are
    /// read; null when the bucket's latencies are unknown (raw events pruned before migration 0024 added it).
    /// </summary>
    public long[]? LatencyHistogram { get; set; }
    /// <summary>How many of <see cref="Requests"/> were served with the user's own provider key (BYOK).</summary>
    public long ByokRequests { get; set; }
}

/// <summary>
/// The usage of one hour (UTC) for one account, key, model and provider: what dashboards and long
/// usage ranges read instead of raw <c>usage_events</c>. Written only by <see cref="UsageRollup"/>.
/// </summary>
public sealed class UsageRollupHour : UsageRollupTotals
{
    public DateTimeOffset Hour { get; set; }
    /// <summary>Median latency (a value that occurred: percentile_disc).</summary>
    public int LatencyP50Ms { get; set; }
    public int LatencyP95Ms { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<UsageRollupHour>
    {
        public void Configure(EntityTypeBuilder<UsageRollupHour> b)
        {
            b.ToTable("usage_rollups_hourly");
            // The owner first: every read is one account's range of hours.
            b.HasKey(r => new { r.UserId, r.Hour, r.KeyId, r.ModelId, r.Provider });
            b.Property(r => r.ModelId).HasMaxLength(128);
            b.Property(r => r.Provider).HasMaxLength(64);
            b.Property(r => r.ByokRequests).HasDefaultValue(0L);
        }
    }
}

/// <summary>
/// The same as <see cref="UsageRollupHour"/>, for one UTC day: the sums of its hours. Latency percentiles
/// do not add up from hours, so days carry none (read the hourly rows for them).
/// </summary>
public sealed class UsageRollupDay : UsageRollupTotals
{
    public DateOnly Day { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<UsageRollupDay>
    {
        public void Configure(EntityTypeBuilder<UsageRollupDay> b)
        {
            b.ToTable("usage_rollups_daily");
            b.HasKey(r => new { r.UserId, r.Day, r.KeyId, r.ModelId, r.Provider });
            // The alerts job sums this month's spend of every account.
            b.HasIndex(r => r.Day);
            b.Property(r => r.ModelId).HasMaxLength(128);
            b.Property(r => r.Provider).HasMaxLength(64);
            b.Property(r => r.ByokRequests).HasDefaultValue(0L);
        }
    }
}

/// <summary>
/// The rollup's progress, one row (id 1): every usage event with an id up to <see cref="LastEventId"/>
/// is in the rollups, and none above it; raw events before <see cref="RawKeptFrom"/> may have been pruned.
/// </summary>
public sealed class UsageRollupState
{
    public int Id { get; set; }
    public long LastEventId { get; set; }
    public DateTimeOffset RawKeptFrom { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<UsageRollupState>
    {
        public void Configure(EntityTypeBuilder<UsageRollupState> b)
        {
            b.ToTable("usage_rollup_state");
            b.Property(s => s.Id).ValueGeneratedNever();
        }
    }
}
