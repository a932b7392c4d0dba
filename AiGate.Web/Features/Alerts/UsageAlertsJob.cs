using AiGate.Web.Features.Jobs;
using Hangfire;

namespace AiGate.Web.Features.Alerts;

/// <summary>Budget and low-balance alerts and hard stops (<see cref="UsageAlertChecker"/>). Safe to re-run: the guard rows make every e-mail once.</summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed class UsageAlertsJob(UsageAlertChecker checker, TimeProvider clock) : IAppJob
{
    public const string Id = "usage-alerts";

    public async Task RunAsync(CancellationToken cancellationToken) =>
        await checker.RunAsync(clock.GetUtcNow(), cancellationToken);
}
