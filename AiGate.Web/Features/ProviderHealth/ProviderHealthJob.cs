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
