using AiGate.Web.Data;
using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Jobs;

/// <summary>Housekeeping: deletes job run history older than <see cref="JobsOptions.RunHistoryDays"/>. Idempotent.</summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed partial class JobRunsPruneJob(AppDbContext db, TimeProvider clock, IOptions<JobsOptions> options,
    ILogger<JobRunsPruneJob> logger) : IAppJob
{
    public const string Id = "job-runs-prune";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var cutoff = clock.GetUtcNow().AddDays(-options.Value.RunHistoryDays);
        var deleted = await db.JobRuns.Where(r => r.StartedAt < cutoff).ExecuteDeleteAsync(cancellationToken);
        LogPruned(deleted, cutoff);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Pruned {Count} job runs older than {Cutoff}")]
    private partial void LogPruned(int count, DateTimeOffset cutoff);
}
