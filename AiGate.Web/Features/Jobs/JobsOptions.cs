using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Jobs;

public sealed class JobsOptions
{
    public const string Section = "Jobs";

    /// <summary>Run a Hangfire server (workers and the recurring scheduler) in this instance. Off for CLI verbs and in most tests.</summary>
    public bool SchedulerEnabled { get; set; } = true;

    /// <summary>How long job run history (<c>job_runs</c>) is kept.</summary>
    [Range(1, 3650)]
    public int RunHistoryDays { get; set; } = 30;

    /// <summary>Workers per instance: jobs that can run at once here.</summary>
    [Range(1, 64)]
    public int WorkerCount { get; set; } = 4;

    /// <summary>How many times a failed run is retried (Hangfire waits 15 s to 2 min before each of the first three) before it shows as failed.</summary>
    [Range(0, 20)]
    public int RetryAttempts { get; set; } = 3;

    /// <summary>How often the recurring and delayed job schedulers look for due jobs. Bounds how late a fire can start.</summary>
    [Range(1, 60)]
    public int SchedulePollingSeconds { get; set; } = 1;

    /// <summary>How long an idle worker waits before looking for jobs again when no notification woke it.</summary>
    [Range(1, 60)]
    public int QueuePollSeconds { get; set; } = 5;
}
