using AiGate.Web.Features.Jobs;
using AiGate.Web.Infrastructure;
using Hangfire;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>
/// Probes every provider and updates health (<see cref="HealthChecker"/>). Clustered: each fire runs on
/// one instance; never two at once anywhere in the cluster.
/// </summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed class ProviderHealthJob(HealthChecker checker, InstanceRegistry instance) : IAppJob
{
    public const string Id = "provider-health-check";

    public async Task RunAsync(CancellationToken cancellationToken) =>
        await checker.CheckAsync(instance.InstanceId, cancellationToken);
}

/// <summary>
/// Daily: deletes old probes and traffic buckets (<see cref="HealthChecker.PruneAsync"/>). The checks read
/// only the passive window and the status page only the last 7 days, so once a day is often enough.
/// </summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed class ProviderHealthPruneJob(HealthChecker checker) : IAppJob
{
    public const string Id = "provider-health-prune";

    public async Task RunAsync(CancellationToken cancellationToken) =>
        await checker.PruneAsync(cancellationToken);
}
