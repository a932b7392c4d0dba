using Quartz;

namespace AiGate.Web.Features.Alerts;

/// <summary>Budget and low-balance alerts and hard stops (<see cref="UsageAlertChecker"/>). Safe to re-run: the guard rows make every e-mail once.</summary>
[DisallowConcurrentExecution]
public sealed class UsageAlertsJob(UsageAlertChecker checker, TimeProvider clock) : IJob
{
    public static readonly JobKey Key = new("usage-alerts", "usage");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        await checker.RunAsync(clock.GetUtcNow(), cancellationToken);
}
