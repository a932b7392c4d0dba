using AiGate.Web.Data;
using AiGate.Web.Infrastructure;
using AiGate.Web.Infrastructure.Telemetry;
using Hangfire.Common;
using Hangfire.Server;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// A Hangfire server filter that writes one <see cref="JobRun"/> per execution (each attempt of a retried job
/// is a row), on whichever instance ran it: the run history admins read on <c>/admin/jobs</c>, kept
/// <see cref="JobsOptions.RunHistoryDays"/> days (Hangfire's own keeps succeeded jobs a day). Logging history
/// fails open: a failed insert is logged, never fails the job.
/// </summary>
public sealed partial class JobRunRecorder(IServiceScopeFactory scopes, IEnumerable<RecurringJobSpec> specs, InstanceRegistry instance,
    TimeProvider clock, ILogger<JobRunRecorder> logger) : IServerFilter
{
    private const string StartedKey = "aigate:started";
    private readonly Dictionary<Type, RecurringJobSpec> _byType = specs.GroupBy(s => s.JobType).ToDictionary(g => g.Key, g => g.First());

    public void OnPerforming(PerformingContext context) => context.Items[StartedKey] = clock.GetTimestamp();

    public void OnPerformed(PerformedContext context)
    {
        var failed = context.Exception is not null && !context.ExceptionHandled;
        var jobId = context.BackgroundJob.Id;
        try
        {
            var elapsed = context.Items.TryGetValue(StartedKey, out var started) ? clock.GetElapsedTime((long)started) : TimeSpan.Zero;
            var recurringId = context.GetJobParameter<string>("RecurringJobId", allowStale: true);
            AiGateTelemetry.JobRuns.Add(1, new KeyValuePair<string, object?>("job", recurringId ?? Name(context.BackgroundJob.Job)),
                new("outcome", failed ? "failed" : "succeeded"));
            // A recurring fire carries the time it was due ("Time", Unix seconds): one row per due time proves each fire ran once.
            var due = context.GetJobParameter<long?>("Time", allowStale: true);
            var spec = _byType.GetValueOrDefault(context.BackgroundJob.Job.Type);
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            db.JobRuns.Add(new JobRun
            {
                JobName = recurringId ?? spec?.Id ?? Name(context.BackgroundJob.Job),
                JobGroup = spec?.Group ?? "adhoc",
                TriggerName = recurringId is null ? "enqueued" : "recurring",
                FireInstanceId = jobId,
                InstanceId = instance.InstanceId,
                StartedAt = clock.GetUtcNow() - elapsed,
                ScheduledAt = due is { } seconds ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null,
                DurationMs = (long)elapsed.TotalMilliseconds,
                Outcome = failed ? JobOutcome.Failed : JobOutcome.Succeeded,
                Error = failed ? Describe(context.Exception!) : null,
            });
            // Synchronous: Hangfire's filters are; this runs on a worker thread, never on a request.
            db.SaveChanges();
        }
        catch (Exception ex)
        {
            LogRecordFailed(ex, jobId);
        }
    }

    private static string Name(Job job) => $"{job.Type.Name}.{job.Method.Name}";

    private static string Describe(Exception error)
    {
        var root = error.GetBaseException();   // Hangfire wraps what the job threw
        var text = $"{root.GetType().Name}: {root.Message}";
        return text.Length <= 4000 ? text : text[..4000];
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the run of job {JobId}")]
    private partial void LogRecordFailed(Exception ex, string jobId);
}
