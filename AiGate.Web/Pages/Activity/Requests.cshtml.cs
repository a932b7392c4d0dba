using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Activity;

/// <summary>
/// The request log: the signed-in account's calls, newest first, 50 a page by keyset (<c>?after=</c> a cursor, never
/// OFFSET), filtered by model, key, status, streamed and UTC days, or found by request id; <c>?handler=csv</c> streams
/// every call of the same filters as CSV with the page's columns (see <see cref="UsageCsv.RequestColumns"/>). A plain member
/// sees only the calls of the keys they created (<see cref="CurrentOrganization.UsageMember"/>); those who see everyone's usage
/// get a member filter and a member column.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.UseOwnKeys)]
public sealed class RequestsModel(AppDbContext db, RequestLog log, TimeProvider clock, OrgContext orgs) : PageModel
{
    private const int DefaultDays = 30;

    [BindProperty(SupportsGet = true)] public DateOnly? From { get; set; }
    [BindProperty(SupportsGet = true)] public DateOnly? To { get; set; }
    [BindProperty(SupportsGet = true)] public string? Model { get; set; }
    [BindProperty(SupportsGet = true)] public Guid? Key { get; set; }
    /// <summary><c>ok</c>, <c>error</c> or a status code.</summary>
    [BindProperty(SupportsGet = true)] public string? Status { get; set; }
    /// <summary><c>yes</c> or <c>no</c>.</summary>
    [BindProperty(SupportsGet = true)] public string? Streamed { get; set; }
    /// <summary>A request id to find (exact).</summary>
    [BindProperty(SupportsGet = true)] public string? Q { get; set; }
    [BindProperty(SupportsGet = true)] public string? After { get; set; }
    /// <summary>Only the calls of the keys this member created (for those who see everyone's usage).</summary>
    [BindProperty(SupportsGet = true)] public Guid? Member { get; set; }

    public IReadOnlyList<RequestLogRow> Rows { get; private set; } = [];
    public RequestLogCursor? Next { get; private set; }
    public IReadOnlyList<KeyOption> Keys { get; private set; } = [];
    /// <summary>The organization's members to filter by; empty for a plain member, who sees only their own calls.</summary>
    public IReadOnlyList<MemberOption> Members { get; private set; } = [];
    /// <summary>The member column and filter are shown: the user sees everyone's usage.</summary>
    public bool ShowMembers => orgs.Current.UsageMember is null;
    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var orgId = orgs.Current.Id;
        var member = orgs.Current.UsageMember;
        Keys = await db.Set<ApiKey>().AsNoTracking().Where(k => k.OwnerId == orgId && (member == null || k.CreatedBy == member)).OrderBy(k => k.Name)
            .Select(k => new KeyOption(k.Id, k.Name, k.Prefix)).ToListAsync(ct);
        if (ShowMembers)
            Members = await (from m in db.Set<OrgMember>().AsNoTracking()
                             join u in db.Users on m.UserId equals u.Id
                             where m.OrgId == orgId
                             orderby u.Email
                             select new MemberOption(m.UserId, u.Email ?? "")).ToListAsync(ct);
        if (Filter() is not { } filter) return Page();
        (Rows, Next) = await log.PageAsync(orgs.Current.Id, filter, RequestLogCursor.Parse(After), ct);
        return Page();
    }

    public async Task<IActionResult> OnGetCsvAsync(CancellationToken ct)
    {
        if (Filter() is not { } filter) return BadRequest(Error!);
        await UsageCsv.WriteRequestsAsync(Response,
            string.Create(CultureInfo.InvariantCulture, $"requests-{filter.From.UtcDateTime:yyyy-MM-dd}-{filter.To.UtcDateTime.AddDays(-1):yyyy-MM-dd}.csv"),
            log.StreamAsync(orgs.Current.Id, filter, ct), ct);
        return new EmptyResult();
    }

    /// <summary>The query as a filter over whole UTC days (30 ending today by default); null with <see cref="Error"/> when out of range.</summary>
    private RequestLogFilter? Filter()
    {
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        var last = To ?? today;
        var first = From ?? last.AddDays(-(DefaultDays - 1));
        (From, To) = (first, last);
        if (first > last) Error = "The start of the range must not be after its end.";
        else if (first.Year < 2000 || last.Year > 9000) Error = "Choose dates between the years 2000 and 9000.";
        if (Error is not null) return null;
        bool? streamed = Streamed switch { "yes" => true, "no" => false, _ => null };
        // A plain member's filter is always their own keys, whatever the query asks.
        return new RequestLogFilter(UsageQueries.StartOfDay(first), UsageQueries.StartOfDay(last.AddDays(1)), NullIfEmpty(Model), Key,
            NullIfEmpty(Status), streamed, NullIfEmpty(Q), orgs.Current.UsageMember ?? Member);
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    /// <summary>The current filters as route values, for the next page's and the CSV's links.</summary>
    public Dictionary<string, string> Query(string? after = null)
    {
        var query = new Dictionary<string, string>
        {
            ["from"] = From!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["to"] = To!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        };
        if (!string.IsNullOrEmpty(Model)) query["model"] = Model;
        if (Key is { } key) query["key"] = key.ToString();
        if (Member is { } member && ShowMembers) query["member"] = member.ToString();
        if (!string.IsNullOrEmpty(Status)) query["status"] = Status;
        if (!string.IsNullOrEmpty(Streamed)) query["streamed"] = Streamed;
        if (!string.IsNullOrEmpty(Q)) query["q"] = Q;
        if (after is not null) query["after"] = after;
        return query;
    }

    public sealed record KeyOption(Guid Id, string Name, string Prefix);

    public sealed record MemberOption(Guid Id, string Email);
}
