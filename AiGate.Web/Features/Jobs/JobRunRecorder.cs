using AiGate.Web.Data;
using Quartz;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// A Quartz job listener that writes one <see cref="JobRun"/> per execution, on whichever
/// instance ran it. Logging history fails open: a failed insert is logged, never fails the job.
/// </summary>
public sealed partial class JobRunRecorder(IServiceScopeFactory scopes, TimeProvider clock, ILogger<JobRunRecorder> logger) : IJobListener
{
    public string Name => "job-run-recorder";

    public ValueTask JobToBeExecuted(IJobExecutionContext context, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask JobExecutionVetoed(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        RecordAsync(context, JobOutcome.Vetoed, null, cancellationToken);

    public ValueTask JobWasExecuted(IJobExecutionContext context, JobExecutionException? jobException, CancellationToken cancellationToken = default) =>
        RecordAsync(context, jobException is null ? JobOutcome.Succeeded : JobOutcome.Failed, jobException, cancellationToken);

    public ValueTask JobProgressChanged(IJobExecutionContext context, Quartz.Extensibility.FireInstanceProgress progress, CancellationToken cancellationToken = default) =>
        ValueTask.CompletedTask;

    private async ValueTask RecordAsync(IJobExecutionContext context, JobOutcome outcome, Exception? error, CancellationToken ct)
    {
        var key = context.JobDetail.Key;
        try
        {
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var duration = context.JobRunTime > TimeSpan.Zero ? context.JobRunTime : clock.GetUtcNow() - context.FireTimeUtc;
            db.JobRuns.Add(new JobRun
            {
                JobName = key.Name,
                JobGroup = key.Group,
                TriggerName = context.Trigger.Key.Name,
                FireInstanceId = context.FireInstanceId,
                InstanceId = context.Scheduler.SchedulerInstanceId,
                StartedAt = context.FireTimeUtc,
                ScheduledAt = context.ScheduledFireTimeUtc,
                DurationMs = (long)duration.TotalMilliseconds,
                Outcome = outcome,
                Error = Describe(error),
            });
            // The job's own token may already be cancelled at shutdown; the record still matters.
            await db.SaveChangesAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRecordFailed(ex, key.ToString());
        }
        _ = ct;
    }

    private static string? Describe(Exception? error)
    {
        var root = error?.GetBaseException();   // Quartz wraps what the job threw
        if (root is null) return null;
        var text = $"{root.GetType().Name}: {root.Message}";
        return text.Length <= 4000 ? text : text[..4000];
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the run of job {JobKey}")]
    private partial void LogRecordFailed(Exception ex, string jobKey);
}
