using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// What the business earns over a range of whole UTC days (default the last 30): revenue (what calls were charged)
/// against the providers' list cost of the same calls, per day, per model and for the top accounts, with the refunds
/// and disputes Stripe reported in the range, and the same as CSV. Calls metered before migration 0016 have no
/// recorded provider cost: their revenue is shown apart and left out of the margin.
/// </summary>
public sealed class BusinessModel(UsageQueries usage, NpgsqlDataSource dataSource, AppDbContext db, TimeProvider clock) : PageModel
{
    public const int DefaultDays = 30;
    public const int TopAccounts = 20;
    private const int MaxStripeRows = 500;

    public DateOnly First { get; private set; }
    public DateOnly Last { get; private set; }
    public string? Error { get; private set; }
    public BusinessReport Report { get; private set; } = BusinessReport.Empty;

    public async Task OnGetAsync(string? from, string? to, CancellationToken ct)
    {
        (First, Last, Error) = Range(from, to);
        Report = await LoadAsync(First, Last, ct);
    }

    /// <summary>The same report as CSV. A bad range is refused with the reason (400), not replaced by the default.</summary>
    public async Task<IActionResult> OnGetCsvAsync(string? from, string? to, CancellationToken ct)
    {
        (First, Last, Error) = Range(from, to);
        if (Error is not null) return BadRequest(Error);
        var report = await LoadAsync(First, Last, ct);
        return File(ToCsv(report).ToUtf8(), "text/csv; charset=utf-8", $"aigate-business-{Iso(First)}-to-{Iso(Last)}.csv");
    }

    /// <summary>The range asked for, or the default (the last 30 days up to today, UTC) with the reason it was not taken.</summary>
    private (DateOnly First, DateOnly Last, string? Error) Range(string? from, string? to)
    {
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        var defaultFirst = today.AddDays(-(DefaultDays - 1));
        if (string.IsNullOrWhiteSpace(from) && string.IsNullOrWhiteSpace(to)) return (defaultFirst, today, null);
        if (!TryDate(from, out var first) || !TryDate(to, out var last))
            return (defaultFirst, today, "Give both dates of the range as YYYY-MM-DD; showing the last 30 days instead.");
        if (first > last)
            return (defaultFirst, today, "The range starts after it ends; showing the last 30 days instead.");
        if (last.DayNumber - first.DayNumber + 1 > UsageQueries.MaxDays)
            return (defaultFirst, today, $"A range covers at most {UsageQueries.MaxDays} days; showing the last 30 days instead.");
        return (first, last, null);
    }

    private static bool TryDate(string? text, out DateOnly date) =>
        DateOnly.TryParseExact(text?.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out date);

    private async Task<BusinessReport> LoadAsync(DateOnly first, DateOnly last, CancellationToken ct)
    {
        var groups = await usage.RevenueAsync(first, last, ct);
        var byDay = new Dictionary<DateOnly, RevenueTotals>();
        var models = new List<(string Model, RevenueTotals Totals)>();
        var accounts = new List<(Guid UserId, RevenueTotals Totals)>();
        var total = default(RevenueTotals);
        foreach (var g in groups)
        {
            if (g.Day is { } day)
            {
                byDay[day] = g.Totals;
                total += g.Totals;
            }
            else if (g.Model is { } model) models.Add((model, g.Totals));
            else if (g.UserId is { } userId) accounts.Add((userId, g.Totals));
        }
        var days = new List<DayRow>(last.DayNumber - first.DayNumber + 1);
        for (var day = first; day <= last; day = day.AddDays(1)) days.Add(new DayRow(day, byDay.GetValueOrDefault(day)));

        // Ordered by revenue already; the top accounts are the first ones.
        var top = accounts.Take(TopAccounts).ToList();
        var labels = await AccountLabelsAsync(top.Select(a => a.UserId), ct);

        var stripe = await StripeRowsAsync(first, last, ct);
        var sold = await CreditSoldAsync(first, last, ct);
        return new BusinessReport(total, days, [.. models.Select(m => new ModelRow(m.Model, m.Totals))],
            [.. top.Select(a => new AccountRow(a.UserId, labels.GetValueOrDefault(a.UserId), a.Totals))], accounts.Count, stripe, sold);
    }

    /// <summary>
    /// What to call each account (issue 17: every account is an organization, ids are organization ids): a personal
    /// organization by its user's e-mail, whose id it shares; a team by its name. An id missing from the answer is an
    /// organization deleted since.
    /// </summary>
    private async Task<Dictionary<Guid, AccountLabel>> AccountLabelsAsync(IEnumerable<Guid> accountIds, CancellationToken ct)
    {
        var ids = accountIds.Distinct().ToList();
        return await (from o in db.Set<Organization>().AsNoTracking()
                      join u in db.Users on o.Id equals u.Id into owner
                      from u in owner.DefaultIfEmpty()
                      where ids.Contains(o.Id)
                      select new { o.Id, Label = new AccountLabel(o.Personal ? u!.Email ?? o.Name : o.Name, !o.Personal) })
            .ToDictionaryAsync(a => a.Id, a => a.Label, ct);
    }

    /// <summary>
    /// Refunds and disputes Stripe reported in the range (by when AiGate processed them), with what each took back: the
    /// ledger entries the event posted (credit taken back plus credit already spent, now owed). An event for an account
    /// deleted since the payment posted nothing; its outcome says so.
    /// </summary>
    private async Task<IReadOnlyList<StripeRow>> StripeRowsAsync(DateOnly first, DateOnly last, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            select e.id, e.type, e.processed_at, min(l.user_id::text)::uuid, coalesce(-sum(l.amount_micros), 0)::bigint, e.outcome
            from stripe_events e
            left join ledger_entries l on l.idempotency_key in ('stripe:refund:' || e.id, 'stripe:refund:' || e.id || ':debt',
                                                               'stripe:dispute:' || e.id, 'stripe:dispute:' || e.id || ':debt')
            where e.type in ('charge.refunded', 'charge.dispute.created') and e.processed_at >= $1 and e.processed_at < $2
            group by e.id, e.type, e.processed_at, e.outcome
            order by e.processed_at desc, e.id
            limit $3
            """);
        command.Parameters.Add(new() { Value = UsageQueries.StartOfDay(first) });
        command.Parameters.Add(new() { Value = UsageQueries.StartOfDay(last.AddDays(1)) });
        command.Parameters.Add(new() { Value = MaxStripeRows });
        var rows = new List<(string Id, string Type, DateTimeOffset At, Guid? UserId, long Micros, string? Outcome)>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
                rows.Add((reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2), reader.IsDBNull(3) ? null : reader.GetGuid(3),
                    reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
        var labels = await AccountLabelsAsync(rows.Where(r => r.UserId is not null).Select(r => r.UserId!.Value), ct);
        return [.. rows.Select(r => new StripeRow(r.Id, r.Type == "charge.refunded" ? "refund" : "dispute", r.At, r.UserId,
            r.UserId is { } id ? labels.GetValueOrDefault(id) : null, r.Micros, r.Outcome))];
    }

    /// <summary>Credit sold through Stripe in the range: what the payments credited (micro-USD) and how many there were.</summary>
    private async Task<(long Payments, long CreditedMicros)> CreditSoldAsync(DateOnly first, DateOnly last, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            select count(*), coalesce(sum(credited_micros), 0)::bigint from stripe_payments where created_at >= $1 and created_at < $2
            """);
        command.Parameters.Add(new() { Value = UsageQueries.StartOfDay(first) });
        command.Parameters.Add(new() { Value = UsageQueries.StartOfDay(last.AddDays(1)) });
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>
    /// One table, one header: a <c>section</c> column (total, day, model, account, refund, dispute) says which part of the
    /// page a row is. Money in USD with six decimals (exact micro-USD), margin in percent.
    /// </summary>
    private static Csv ToCsv(BusinessReport report)
    {
        var csv = new Csv().Row("section", "day", "model", "account", "requests", "revenue_usd", "provider_cost_usd", "margin_usd", "margin_percent",
            "revenue_without_provider_cost_usd", "amount_usd", "note");
        void Totals(string section, string day, string model, string account, RevenueTotals t) => csv.Row(section, day, model, account,
            CsvField.Number(t.Requests.ToString(CultureInfo.InvariantCulture)), CsvField.Number(Money.Usd(t.RevenueMicros)),
            CsvField.Number(Money.Usd(t.ProviderCostMicros)), CsvField.Number(Money.Usd(t.MarginMicros)),
            CsvField.Number(t.MarginPercent?.ToString("0.0", CultureInfo.InvariantCulture) ?? ""), CsvField.Number(Money.Usd(t.UncostedRevenueMicros)), "", "");
        Totals("total", "", "", "", report.Total);
        foreach (var d in report.Days) Totals("day", Iso(d.Day), "", "", d.Totals);
        foreach (var m in report.Models) Totals("model", "", m.Model, "", m.Totals);
        foreach (var a in report.Accounts) Totals("account", "", "", a.Label?.Name ?? $"deleted account {a.AccountId}", a.Totals);
        foreach (var s in report.Stripe)
            csv.Row(s.Kind, s.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), "", s.Label?.Name ?? "", "", "", "", "", "", "",
                CsvField.Number(Money.Usd(s.TakenBackMicros)), s.Outcome ?? s.EventId);
        return csv;
    }

    private static string Iso(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public sealed record DayRow(DateOnly Day, RevenueTotals Totals);
    public sealed record ModelRow(string Model, RevenueTotals Totals);
    /// <param name="AccountId">The organization's id (a personal one's is its user's).</param>
    /// <param name="Label">Null: the organization was deleted since.</param>
    public sealed record AccountRow(Guid AccountId, AccountLabel? Label, RevenueTotals Totals);
    /// <summary>A refund or dispute event and what it took back from the account (micro-USD).</summary>
    public sealed record StripeRow(string EventId, string Kind, DateTimeOffset At, Guid? AccountId, AccountLabel? Label, long TakenBackMicros, string? Outcome);
    /// <summary>An account as the page names it: the user's e-mail for a personal organization, else the organization's name (<paramref name="Team"/>).</summary>
    public sealed record AccountLabel(string Name, bool Team);

    public sealed record BusinessReport(RevenueTotals Total, IReadOnlyList<DayRow> Days, IReadOnlyList<ModelRow> Models, IReadOnlyList<AccountRow> Accounts,
        int AccountCount, IReadOnlyList<StripeRow> Stripe, (long Payments, long CreditedMicros) CreditSold)
    {
        public static BusinessReport Empty { get; } = new(default, [], [], [], 0, [], (0, 0));
        public long RefundedMicros => Stripe.Where(s => s.Kind == "refund").Sum(s => s.TakenBackMicros);
        public long DisputedMicros => Stripe.Where(s => s.Kind == "dispute").Sum(s => s.TakenBackMicros);
    }
}
