using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Jobs;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Quartz;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// The jobs dashboard: every Quartz job with its schedule, trigger state, next and last fire and last
/// outcome; the run history from <c>job_runs</c>; the cluster's scheduler instances; and buttons to run a
/// job now, pause it and resume it. The buttons go through Quartz's <see cref="IScheduler"/>, whose state
/// lives in PostgreSQL, so they act on the whole cluster whichever instance serves the page (even one that
/// runs no scheduler itself). Every action is written to <c>audit_log</c> and listed here.
/// </summary>
public sealed class JobsModel(ISchedulerFactory schedulers, AppDbContext db, AuditLog audit) : PageModel
{
    private const int HistorySize = 50;

    public IReadOnlyList<JobRow> Jobs { get; private set; } = [];
    public IReadOnlyList<RunRow> Runs { get; private set; } = [];
    public IReadOnlyList<AuditRow> Audit { get; private set; } = [];
    public IReadOnlyList<InstanceRow> Instances { get; private set; } = [];
    /// <summary>The history shown is of this job only (<c>?job=group.name</c>).</summary>
    public string? JobFilter { get; private set; }
    public string ThisInstance { get; private set; } = "";
    public bool SchedulerRunsHere { get; private set; }
    [TempData] public string? Notice { get; set; }

    public async Task OnGetAsync(string? job, CancellationToken ct)
    {
        var scheduler = await schedulers.GetScheduler(ct);
        ThisInstance = scheduler.SchedulerInstanceId;
        SchedulerRunsHere = await scheduler.GetStatus(ct) == SchedulerStatus.Running;
        JobFilter = string.IsNullOrWhiteSpace(job) ? null : job.Trim();

        // Three round trips whatever the number of jobs: the job list, the trigger list (with states), the triggers (schedules).
        var headers = (await scheduler.QueryJobs(new JobQuery { Take = 500 }, ct)).Items;
        // The latest run of each job: one backward step of ix_job_runs_job_group_job_name_started_at per job, not a sort of all runs.
        var groups = headers.Select(h => h.Key.Group).ToArray();
        var names = headers.Select(h => h.Key.Name).ToArray();
        var lastRuns = await db.Database.SqlQuery<LastRun>($"""
            select k.job_group as "JobGroup", k.job_name as "JobName", r.started_at as "StartedAt",
                   r.duration_ms as "DurationMs", r.outcome as "Outcome", r.instance_id as "InstanceId"
            from unnest({groups}, {names}) as k (job_group, job_name)
            cross join lateral (
                select started_at, duration_ms, outcome, instance_id from job_runs
                where job_runs.job_group = k.job_group and job_runs.job_name = k.job_name
                order by started_at desc limit 1) as r
            """).ToListAsync(ct);
        var triggerHeaders = (await scheduler.QueryTriggers(new TriggerQuery { Take = 1000 }, ct)).Items;
        var schedules = (await scheduler.GetTriggers([.. triggerHeaders.Select(t => t.Key)], ct)).ToDictionary(t => t.Key, Describe);
        Jobs = [.. headers.Select(job =>
        {
            var triggers = triggerHeaders.Where(t => t.JobKey.Equals(job.Key))
                .Select(t => new TriggerRow(t.Key.ToString(), schedules.GetValueOrDefault(t.Key, t.TriggerType), t.State.ToString(),
                    t.NextFireTimeUtc, t.PreviousFireTimeUtc, t.Pause?.RequestedBy))
                .ToList();
            var last = lastRuns.FirstOrDefault(r => r.JobGroup == job.Key.Group && r.JobName == job.Key.Name);
            return new JobRow(job.Key.Group, job.Key.Name, job.Description, job.ConcurrentExecutionDisallowed, triggers,
                triggers.Where(t => t.Next is not null).Select(t => t.Next).Min(),
                triggers.Where(t => t.Previous is not null).Select(t => t.Previous).Max(), last);
        })];

        var runs = db.JobRuns.AsNoTracking();
        if (JobFilter is not null && JobFilter.Split('.', 2) is [var g, var n]) runs = runs.Where(r => r.JobGroup == g && r.JobName == n);
        Runs = await runs.OrderByDescending(r => r.StartedAt).ThenByDescending(r => r.Id).Take(HistorySize)
            .Select(r => new RunRow(r.Id, r.JobGroup + "." + r.JobName, r.TriggerName, r.InstanceId, r.StartedAt, r.ScheduledAt, r.DurationMs, r.Outcome, r.Error))
            .ToListAsync(ct);
        Audit = await db.Set<AuditEntry>().AsNoTracking().Where(a => a.Action.StartsWith("job."))
            .OrderByDescending(a => a.At).ThenByDescending(a => a.Id).Take(HistorySize)
            .Select(a => new AuditRow(a.At, a.Actor, a.Action, a.Target, a.InstanceId, a.Detail)).ToListAsync(ct);
        Instances = [.. (await scheduler.QueryClusterNodes(ct)).Select(n => new InstanceRow(n.InstanceId, n.LastCheckInUtc, n.State.ToString(), n.IsCurrentNode))];
    }

    public Task<IActionResult> OnPostTriggerAsync(string group, string name, CancellationToken ct) =>
        ActAsync(group, name, "job.trigger", async (s, key) => await s.TriggerJob(key, null, ct), "was triggered: it runs on the next free instance", ct);

    public Task<IActionResult> OnPostPauseAsync(string group, string name, CancellationToken ct) =>
        ActAsync(group, name, "job.pause", async (s, key) => await s.PauseJobWith(key, new PauseDetails { Reason = "paused from /admin/jobs", RequestedBy = User.Identity?.Name }, ct), "is paused: its schedule will not fire until it is resumed", ct);

    public Task<IActionResult> OnPostResumeAsync(string group, string name, CancellationToken ct) =>
        ActAsync(group, name, "job.resume", async (s, key) => await s.ResumeJob(key, ct), "is resumed", ct);

    /// <summary>Acts through the clustered scheduler, then records who did it; an unknown job is a 404 and changes nothing.</summary>
    private async Task<IActionResult> ActAsync(string group, string name, string action, Func<IScheduler, JobKey, ValueTask> act, string outcome, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(group) || string.IsNullOrWhiteSpace(name)) return BadRequest();
        var scheduler = await schedulers.GetScheduler(ct);
        var key = new JobKey(name, group);
        if (!await scheduler.Exists(key, ct)) return NotFound();
        await act(scheduler, key);
        audit.Add(User.GetUserId(), User.Identity?.Name ?? "unknown", action, $"{group}.{name}", scheduler.SchedulerInstanceId);
        await db.SaveChangesAsync(ct);
        Notice = $"{group}.{name} {outcome}.";
        return RedirectToPage(new { job = $"{group}.{name}" });
    }

    private static string Describe(ITrigger trigger) => trigger switch
    {
        ICronTrigger cron => $"cron {cron.CronExpressionString} ({cron.TimeZone.Id})",
        ISimpleTrigger simple when simple.RepeatCount == 0 => "once",
        ISimpleTrigger simple => "every " + Interval(simple.RepeatInterval),
        _ => trigger.GetType().Name,
    };

    private static string Interval(TimeSpan t) =>
        t.TotalHours >= 1 && t.TotalHours % 1 == 0 ? $"{t.TotalHours:0} h" :
        t.TotalMinutes >= 1 && t.TotalMinutes % 1 == 0 ? $"{t.TotalMinutes:0} min" : $"{t.TotalSeconds:0.###} s";

    public sealed record JobRow(string Group, string Name, string? Description, bool NoConcurrency, IReadOnlyList<TriggerRow> Triggers,
        DateTimeOffset? Next, DateTimeOffset? Previous, LastRun? Last)
    {
        public string Key => $"{Group}.{Name}";
        public bool Paused => Triggers.Count > 0 && Triggers.All(t => t.State == nameof(TriggerState.Paused));
    }

    public sealed record TriggerRow(string Key, string Schedule, string State, DateTimeOffset? Next, DateTimeOffset? Previous, string? PausedBy);
    public sealed record RunRow(long Id, string Job, string Trigger, string InstanceId, DateTimeOffset StartedAt, DateTimeOffset? ScheduledAt,
        long DurationMs, JobOutcome Outcome, string? Error);
    public sealed record AuditRow(DateTimeOffset At, string Actor, string Action, string Target, string InstanceId, string? Detail);

    public sealed class LastRun
    {
        public string JobGroup { get; set; } = "";
        public string JobName { get; set; } = "";
        public DateTimeOffset StartedAt { get; set; }
        public long DurationMs { get; set; }
        public string Outcome { get; set; } = "";
        public string InstanceId { get; set; } = "";
    }

    public sealed record InstanceRow(string Name, DateTimeOffset? LastCheckIn, string State, bool IsThisInstance);
}
