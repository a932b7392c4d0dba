using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Alerts;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Dashboard;

/// <summary>
/// The signed-in home: balance, this UTC month's spend, a 30-day spend chart (server-rendered SVG:
/// the CSP allows no inline style or script) and the latest requests, 50 a page, older ones by
/// <c>?before=&lt;id&gt;</c>. Everything is the signed-in user's own; aggregates go through
/// <see cref="UsageQueries"/>, the single place that reads rollups. From 70 % of the
/// month's budget a banner links to the alert settings. A plain member (no <see cref="OrgPermission.ViewBalance"/>) sees no
/// organization balance or budget: only the usage and requests of the keys they created, and the monthly budget an admin
/// set for them (<c>organization_members.monthly_budget_micros</c>) with what is left of it.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.UseOwnKeys)]
public sealed class IndexModel(AppDbContext db, Ledger ledger, UsageQueries usage, AlertPreferencesReader alerts, BudgetStops stops, IOptions<CreditsOptions> options,
    TimeProvider clock, OrgContext orgs)
    : PageModel
{
    public const int PageSize = 50;
    public const int ChartDays = 30;

    public CreditBalance Balance { get; private set; } = new(0, 0);
    /// <summary>The user may see the organization's balance (owner, admin, billing).</summary>
    public bool ShowBalance { get; private set; }
    /// <summary>The month's spend is the user's own keys' (a plain member), not the organization's.</summary>
    public bool OwnUsage { get; private set; }
    /// <summary>The monthly budget (micro-USD) an admin set for this member; null when none is, or when the page shows everyone's usage.</summary>
    public long? MemberBudgetMicros { get; private set; }
    /// <summary>What is left of <see cref="MemberBudgetMicros"/> this month (never below zero).</summary>
    public long MemberBudgetLeftMicros => MemberBudgetMicros is { } b ? Math.Max(0, b - Month.CostMicros) : 0;
    /// <summary>The organization has no credits left (shown to a member without the amount).</summary>
    public bool OutOfCredits { get; private set; }
    public decimal UsdPerCredit => options.Value.UsdPerCredit;
    public UsageTotals Month { get; private set; }
    /// <summary>This month's spend against the budget (the banner at 70 % and over).</summary>
    public BudgetStatus? Budget { get; private set; }
    /// <summary>The hard stop is in force: the set the gateway enforces, not a recomputation of its rule.</summary>
    public bool Stopped { get; private set; }
    public string MonthName { get; private set; } = "";
    public IReadOnlyList<UsageGroup> Days { get; private set; } = [];
    public IReadOnlyList<RequestRow> Requests { get; private set; } = [];
    /// <summary>The id to page from for older requests; null on the last page.</summary>
    public long? OlderBefore { get; private set; }
    public long? Before { get; private set; }
    /// <summary>The user has never made a call (the first page is empty).</summary>
    public bool NoRequestsYet => Before is null && Requests.Count == 0;

    public async Task OnGetAsync(long? before, CancellationToken ct)
    {
        var orgId = orgs.Current.Id;
        var now = clock.GetUtcNow();
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var monthStart = new DateOnly(today.Year, today.Month, 1);
        MonthName = monthStart.ToString("MMMM yyyy", System.Globalization.CultureInfo.InvariantCulture);

        var member = orgs.Current.UsageMember;
        OwnUsage = member is not null;
        ShowBalance = orgs.Current.Can(OrgPermission.ViewBalance);
        var balance = await ledger.GetBalanceAsync(orgId, ct);
        OutOfCredits = balance.BalanceMicros <= 0;
        if (ShowBalance) Balance = balance;
        // One summary by day covers both the month so far and the chart.
        var first = today.AddDays(-(ChartDays - 1));
        var days = (await usage.SummarizeDaysAsync(orgId, monthStart < first ? monthStart : first, today, UsageGrouping.Day, ct, memberId: member)).Groups;
        Month = days.Where(d => d.Day >= monthStart).Aggregate(default(UsageTotals), (sum, d) => sum + d.Totals);
        // The organization's budget and its alerts are for those who see its balance; a member sees the budget set for them.
        if (ShowBalance) Budget = await alerts.GetStatusAsync(orgId, now, Month.CostMicros, ct);
        if (member is { } self)
            MemberBudgetMicros = await db.Set<OrgMember>().AsNoTracking().Where(m => m.OrgId == orgId && m.UserId == self)
                .Select(m => m.MonthlyBudgetMicros).FirstOrDefaultAsync(ct);
        Stopped = stops.Find(orgId) is not null;
        Days = UsageQueries.FillDays([.. days.Where(d => d.Day >= first)], first, today);

        Before = before;
        var events = db.Set<UsageEvent>().AsNoTracking().Where(e => e.UserId == orgId);
        if (member is { } creator)
            events = events.Where(e => db.Set<ApiKey>().Any(k => k.Id == e.KeyId && k.OwnerId == orgId && k.CreatedBy == creator));
        if (before is { } id)
        {
            // Keyset paging on (created_at, id), newest first, so the (user_id, created_at) index serves every page.
            var anchor = await events.Where(e => e.Id == id).Select(e => (DateTimeOffset?)e.CreatedAt).FirstOrDefaultAsync(ct);
            events = anchor is { } at ? events.Where(e => e.CreatedAt < at || (e.CreatedAt == at && e.Id < id)) : events.Where(e => false);
        }
        var rows = await events.OrderByDescending(e => e.CreatedAt).ThenByDescending(e => e.Id).Take(PageSize + 1)
            .Select(e => new RequestRow(e.Id, e.CreatedAt, e.ModelId, e.Provider, e.PromptTokens, e.CompletionTokens, e.CostMicros,
                e.LatencyMs, e.Status, e.Estimated, e.Streamed, e.RequestId, e.Byok))
            .ToListAsync(ct);
        Requests = rows.Count > PageSize ? rows[..PageSize] : rows;
        OlderBefore = rows.Count > PageSize ? Requests[^1].Id : null;
    }

    public sealed record RequestRow(long Id, DateTimeOffset At, string Model, string Provider, long PromptTokens, long CompletionTokens,
        long CostMicros, int LatencyMs, int Status, bool Estimated, bool Streamed, string RequestId, bool Byok = false);

    /// <summary>One bar of the chart, in the SVG's own units.</summary>
    public sealed record Bar(DateOnly Day, long CostMicros, long Requests, double X, double Y, double Width, double Height);

    public const double ChartWidth = 600, ChartHeight = 120;

    public IEnumerable<Bar> Bars()
    {
        var max = Days.Count == 0 ? 0 : Days.Max(d => d.Totals.CostMicros);
        var slot = ChartWidth / Math.Max(1, Days.Count);
        for (var i = 0; i < Days.Count; i++)
        {
            var cost = Days[i].Totals.CostMicros;
            // A day with calls but a tiny cost still shows a sliver; a day without any shows nothing.
            var height = max <= 0 || cost <= 0 ? 0 : Math.Max(1.5, Math.Round(ChartHeight * cost / max, 2));
            yield return new Bar(Days[i].Day!.Value, cost, Days[i].Totals.Requests, Math.Round(i * slot + slot * 0.15, 2), ChartHeight - height,
                Math.Round(slot * 0.7, 2), height);
        }
    }
}
