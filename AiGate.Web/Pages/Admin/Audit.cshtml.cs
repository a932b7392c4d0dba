using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// The audit log, newest first, 50 entries a page, filtered by actor (prefix, any case), action (prefix: <c>model.</c>
/// is every model action), target (prefix: <c>user:</c>, <c>model:openai/</c>) and time (UTC). Read-only by design: the
/// page takes no POST (405), nothing in the app updates or deletes an entry, and migration 0016's trigger makes
/// PostgreSQL refuse an UPDATE, DELETE or TRUNCATE of <c>audit_log</c> from anyone.
/// </summary>
public sealed class AuditModel(AppDbContext db) : PageModel
{
    public const int PageSize = 50;

    public string? Actor { get; private set; }
    public string? Action { get; private set; }
    public string? Target { get; private set; }
    public string? From { get; private set; }
    public string? To { get; private set; }
    public string? Error { get; private set; }
    public IReadOnlyList<EntryRow> Entries { get; private set; } = [];
    /// <summary>The id to pass as <c>before</c> for the next (older) page; null on the last page.</summary>
    public long? Older { get; private set; }
    public bool IsFirstPage { get; private set; }
    public IReadOnlyList<string> KnownActions { get; private set; } = [];

    public async Task OnGetAsync(string? actor, string? action, string? target, string? from, string? to, long? before, CancellationToken ct)
    {
        (Actor, Action, Target, From, To) = (Clean(actor), Clean(action), Clean(target), Clean(from), Clean(to));
        IsFirstPage = before is null;
        var entries = db.Set<AuditEntry>().AsNoTracking();
        if (Actor is not null) entries = entries.Where(a => EF.Functions.ILike(a.Actor, Prefix(Actor), "\\"));
        if (Action is not null) entries = entries.Where(a => EF.Functions.Like(a.Action, Prefix(Action), "\\"));
        if (Target is not null) entries = entries.Where(a => EF.Functions.Like(a.Target, Prefix(Target), "\\"));
        if (From is not null)
        {
            if (ParseTime(From, endOfDay: false) is { } start) entries = entries.Where(a => a.At >= start);
            else Error = $"\"{From}\" is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).";
        }
        if (To is not null)
        {
            if (ParseTime(To, endOfDay: true) is { } end) entries = entries.Where(a => a.At < end);
            else Error = $"\"{To}\" is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).";
        }
        if (Error is not null) return;   // a half-applied filter would show the wrong entries as if they matched
        if (before is { } id) entries = entries.Where(a => a.Id < id);

        var rows = await entries.OrderByDescending(a => a.Id).Take(PageSize + 1)
            .Select(a => new EntryRow(a.Id, a.At, a.Actor, a.Action, a.Target, a.InstanceId, a.Detail, a.Before, a.After, a.Reason, a.RequestId))
            .ToListAsync(ct);
        Older = rows.Count > PageSize ? rows[PageSize - 1].Id : null;
        Entries = rows.Count > PageSize ? rows[..PageSize] : rows;
        KnownActions = await db.Set<AuditEntry>().AsNoTracking().Select(a => a.Action).Distinct().OrderBy(a => a).Take(200).ToListAsync(ct);
    }

    /// <summary>
    /// There is nothing to post: without this a POST would render the page (Razor Pages runs no handler and answers 200),
    /// which reads as if something were accepted. 405, as for any method a resource does not allow.
    /// </summary>
    public IActionResult OnPost()
    {
        Response.Headers.Allow = "GET, HEAD";
        return StatusCode(StatusCodes.Status405MethodNotAllowed);
    }

    private static string? Clean(string? value)
    {
        var trimmed = value?.Trim();
        return string.IsNullOrEmpty(trimmed) ? null : trimmed.Length <= 300 ? trimmed : trimmed[..300];
    }

    /// <summary>A LIKE pattern matching values that start with <paramref name="text"/> literally (its % and _ escaped).</summary>
    private static string Prefix(string text) => text.Replace("\\", "\\\\", StringComparison.Ordinal)
        .Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";

    /// <summary>
    /// A UTC time from a date or a date and time (to the minute or second). A start is the first instant it names; an end
    /// (<paramref name="endOfDay"/>) the first instant after it, so "to 2026-03-01" and "to 10:30" include that day and minute.
    /// </summary>
    internal static DateTimeOffset? ParseTime(string text, bool endOfDay)
    {
        var culture = CultureInfo.InvariantCulture;
        const DateTimeStyles utc = DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal;
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", culture, DateTimeStyles.None, out var day))
            return new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddDays(endOfDay ? 1 : 0);
        if (DateTime.TryParseExact(text, ["yyyy-MM-ddTHH:mm", "yyyy-MM-dd HH:mm"], culture, utc, out var minute))
            return new DateTimeOffset(minute, TimeSpan.Zero).AddMinutes(endOfDay ? 1 : 0);
        if (DateTime.TryParseExact(text, ["yyyy-MM-ddTHH:mm:ss", "yyyy-MM-dd HH:mm:ss"], culture, utc, out var second))
            return new DateTimeOffset(second, TimeSpan.Zero).AddSeconds(endOfDay ? 1 : 0);
        return null;
    }

    /// <summary>The current filters plus <paramref name="before"/>, for the paging links.</summary>
    public Dictionary<string, string> RouteValues(long? before)
    {
        var values = new Dictionary<string, string>();
        if (Actor is not null) values["actor"] = Actor;
        if (Action is not null) values["action"] = Action;
        if (Target is not null) values["target"] = Target;
        if (From is not null) values["from"] = From;
        if (To is not null) values["to"] = To;
        if (before is not null) values["before"] = before.Value.ToString(CultureInfo.InvariantCulture);
        return values;
    }

    public sealed record EntryRow(long Id, DateTimeOffset At, string Actor, string Action, string Target, string InstanceId, string? Detail,
        string? Before, string? After, string? Reason, string? RequestId)
    {
        public IReadOnlyList<AuditDiffLine> Diff => AuditDiff.Compare(Before, After);
    }
}
