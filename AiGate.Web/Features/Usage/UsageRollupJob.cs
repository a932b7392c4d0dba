using Microsoft.Extensions.Options;
using Quartz;

namespace AiGate.Web.Features.Usage;

/// <summary>Folds new usage events into the rollups (<see cref="UsageRollup.RunAsync"/>). Idempotent; a re-run finds nothing new.</summary>
[DisallowConcurrentExecution]
public sealed class UsageRollupJob(UsageRollup rollup) : IJob
{
    public static readonly JobKey Key = new("usage-rollup", "usage");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        await rollup.RunAsync(cancellationToken);
}

/// <summary>Daily: deletes raw usage events past <see cref="UsageOptions.RawRetentionDays"/> that are already rolled up.</summary>
[DisallowConcurrentExecution]
public sealed class UsagePruneJob(UsageRollup rollup, IOptions<UsageOptions> options) : IJob
{
    public static readonly JobKey Key = new("usage-prune", "usage");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default)
    {
        // Roll up first, so whatever is old enough to prune is already in the rollups and can go.
        await rollup.RunAsync(cancellationToken);
        await rollup.PruneAsync(options.Value.RawRetentionDays, cancellationToken);
    }
}
