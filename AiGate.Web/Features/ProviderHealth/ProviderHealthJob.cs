using Quartz;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>
/// Probes every provider and updates health (<see cref="HealthChecker"/>). Clustered: each fire runs on
/// one instance; never two at once anywhere in the cluster.
/// </summary>
[DisallowConcurrentExecution]
public sealed class ProviderHealthJob(HealthChecker checker) : IJob
{
    public static readonly JobKey Key = new("provider-health-check", "providers");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        await checker.CheckAsync(context.Scheduler.SchedulerInstanceId, cancellationToken);
}

/// <summary>
/// Daily: deletes old probes and traffic buckets (<see cref="HealthChecker.PruneAsync"/>). The checks read
/// only the passive window and the status page only the last 7 days, so once a day is often enough.
/// </summary>
[DisallowConcurrentExecution]
public sealed class ProviderHealthPruneJob(HealthChecker checker) : IJob
{
    public static readonly JobKey Key = new("provider-health-prune", "providers");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        await checker.PruneAsync(cancellationToken);
}
