using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Quartz;

namespace AiGate.Web.Features.Jobs;

/// <summary>Housekeeping: deletes job run history older than <see cref="JobsOptions.RunHistoryDays"/>. Idempotent.</summary>
[DisallowConcurrentExecution]
public sealed partial class JobRunsPruneJob(AppDbContext db, TimeProvider clock, IOptions<JobsOptions> options,
    ILogger<JobRunsPruneJob> logger) : IJob
{
    public static readonly JobKey Key = new("job-runs-prune", "housekeeping");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default)
    {
        var cutoff = clock.GetUtcNow().AddDays(-options.Value.RunHistoryDays);
        var deleted = await db.JobRuns.Where(r => r.StartedAt < cutoff).ExecuteDeleteAsync(cancellationToken);
        LogPruned(deleted, cutoff);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Pruned {Count} job runs older than {Cutoff}")]
    private partial void LogPruned(int count, DateTimeOffset cutoff);
}
