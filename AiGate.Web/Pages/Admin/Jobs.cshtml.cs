using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Jobs;
using AiGate.Web.Infrastructure;
using Hangfire;
using Hangfire.Storage;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// What Hangfire's dashboard (<c>/admin/hangfire</c>) lacks: pausing and resuming a recurring job
/// (<see cref="JobPauses"/>), the run history of the last <see cref="JobsOptions.RunHistoryDays"/> days from
/// <c>job_runs</c> (the dashboard keeps a succeeded job a day), and the audit log of who did what to which job,
/// from this page or from the dashboard. Triggering, requeueing and deleting are the dashboard's.
/// </summary>
public sealed class JobsModel(JobStorage storage, JobPauses pauses, IEnumerable<RecurringJobSpec> specs, AppDbContext db, AuditLog audit)
    : PageModel
{
    private const int HistorySize = 50;

    public IReadOnlyList<JobRow> Jobs { get; private set; } = [];
    public IReadOnlyList<RunRow> Runs { get; private set; } = [];
    public IReadOnlyList<AuditRow> Audit { get; private set; } = [];
    /// <summary>The history shown is of this job only (<c>?job=id</c>).</summary>
    public string? JobFilter { get; private set; }
    [TempData] public string? Notice { get; set; }

    public async Task OnGetAsync(string? job, CancellationToken ct)
    {
        JobFilter = string.IsNullOrWhiteSpace(job) ? null : job.Trim();
        var paused = pauses.Paused();
        var described = specs.ToDictionary(s => s.Id, s => s.Description);
        using (var connection = storage.GetConnection())
            Jobs = [.. connection.GetRecurringJobs().OrderBy(j => j.Id, StringComparer.Ordinal)
                .Select(j => new JobRow(j.Id, described.GetValueOrDefault(j.Id), j.Cron, Utc(j.NextExecution), Utc(j.LastExecution), j.LastJobState,
                    j.Error, paused.Contains(j.Id)))];

        var runs = db.JobRuns.AsNoTracking();
        if (JobFilter is not null) runs = runs.Where(r => r.JobName == JobFilter);
        Runs = await runs.OrderByDescending(r => r.StartedAt).ThenByDescending(r => r.Id).Take(HistorySize)
            .Select(r => new RunRow(r.Id, r.JobName, r.FireInstanceId, r.TriggerName, r.InstanceId, r.StartedAt, r.ScheduledAt, r.DurationMs, r.Outcome, r.Error))
            .ToListAsync(ct);
        Audit = await db.Set<AuditEntry>().AsNoTracking().Where(a => a.Action.StartsWith("job."))
            .OrderByDescending(a => a.At).ThenByDescending(a => a.Id).Take(HistorySize)
            .Select(a => new AuditRow(a.At, a.Actor, a.Action, a.Target, a.InstanceId, a.Detail)).ToListAsync(ct);
    }

    public Task<IActionResult> OnPostPauseAsync(string id, CancellationToken ct) =>
        ActAsync(id, "job.pause", pauses.Pause, "is paused: its schedule will not fire until it is resumed", ct);

    public Task<IActionResult> OnPostResumeAsync(string id, CancellationToken ct) =>
        ActAsync(id, "job.resume", pauses.Resume, "is resumed", ct);

    /// <summary>Acts on Hangfire's shared storage, then records who did it; an unknown job is a 404 and changes nothing.</summary>
    private async Task<IActionResult> ActAsync(string id, string action, Action<string> act, string outcome, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(id)) return BadRequest();
        using (var connection = storage.GetConnection())
            if (connection.GetAllEntriesFromHash($"recurring-job:{id}") is null) return NotFound();
        act(id);
        audit.Add(new AuditChange(action, id));
        await db.SaveChangesAsync(ct);
        Notice = $"{id} {outcome}.";
        return RedirectToPage(new { job = id });
    }

    /// <summary>Hangfire's times are UTC but carry no offset; say so, or they would be read as the server's local time.</summary>
    private static DateTimeOffset? Utc(DateTime? t) => t is { } value ? new DateTimeOffset(DateTime.SpecifyKind(value, DateTimeKind.Utc)) : null;

    public sealed record JobRow(string Id, string? Description, string Cron, DateTimeOffset? Next, DateTimeOffset? Last, string? LastState, string? Error, bool Paused);
    public sealed record RunRow(long Id, string Job, string HangfireJobId, string Trigger, string InstanceId, DateTimeOffset StartedAt,
        DateTimeOffset? ScheduledAt, long DurationMs, JobOutcome Outcome, string? Error);
    public sealed record AuditRow(DateTimeOffset At, string Actor, string Action, string Target, string InstanceId, string? Detail);
}
