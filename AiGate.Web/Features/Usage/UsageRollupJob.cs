using Microsoft.Extensions.Options;
using AiGate.Web.Features.Jobs;
using Hangfire;

namespace AiGate.Web.Features.Usage;

/// <summary>Folds new usage events into the rollups (<see cref="UsageRollup.RunAsync"/>). Idempotent; a re-run finds nothing new.</summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed class UsageRollupJob(UsageRollup rollup) : IAppJob
{
    public const string Id = "usage-rollup";

    public async Task RunAsync(CancellationToken cancellationToken) =>
        await rollup.RunAsync(cancellationToken);
}

/// <summary>Daily: deletes raw usage events past <see cref="UsageOptions.RawRetentionDays"/> that are already rolled up.</summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed class UsagePruneJob(UsageRollup rollup, IOptions<UsageOptions> options) : IAppJob
{
    public const string Id = "usage-prune";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // Roll up first, so whatever is old enough to prune is already in the rollups and can go.
        await rollup.RunAsync(cancellationToken);
        await rollup.PruneAsync(options.Value.RawRetentionDays, cancellationToken);
    }
}
