using AiGate.Web.Data;
using AiGate.Web.Features.Credits;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Features.Alerts;

/// <summary>A user's alert choices, with the defaults filled in for users who never saved any.</summary>
public sealed record AlertPreferences(long? MonthlyBudgetMicros, bool Notify70, bool Notify90, bool Notify100, bool HardStop,
    bool LowBalanceEnabled, long LowBalanceMicros)
{
    /// <summary>$1: the amount under which the dashboard already calls a balance low.</summary>
    public const long DefaultLowBalanceMicros = 1_000_000;

    public static readonly AlertPreferences Default = new(null, true, true, true, false, true, DefaultLowBalanceMicros);

    public static readonly int[] Thresholds = [70, 90, 100];

    public bool Notifies(int threshold) => threshold switch { 70 => Notify70, 90 => Notify90, 100 => Notify100, _ => false };

    /// <summary>
    /// SQL for an account's default budget: the size of its most recent positive purchase or grant (a
    /// top-up, or a plan's monthly allowance, which billing posts as a grant). <c>{0}</c> is the user id expression.
    /// </summary>
    public const string DefaultBudgetSql = """
        (select l.amount_micros from ledger_entries l
         where l.user_id = {0} and l.kind in ('purchase', 'grant') and l.amount_micros > 0
         order by l.created_at desc, l.id desc limit 1)
        """;
}

/// <summary>An account's budget for the month and how much of it is spent.</summary>
public sealed record BudgetStatus(AlertPreferences Preferences, long? DefaultBudgetMicros, long SpendMicros, DateOnly Period)
{
    /// <summary>The budget in force: the user's own, else the default; null when there is none (no purchase or grant yet).</summary>
    public long? BudgetMicros => Preferences.MonthlyBudgetMicros ?? DefaultBudgetMicros;

    /// <summary>Whole percent of the budget spent (rounded down), or null without a budget.</summary>
    public int? PercentUsed => BudgetMicros is > 0 and var b ? (int)Math.Min(int.MaxValue, SpendMicros * 100 / b) : null;

    public bool Stopped => Preferences.HardStop && BudgetMicros is > 0 and var b && SpendMicros >= b;

    public static DateOnly PeriodOf(DateTimeOffset now) => new(now.UtcDateTime.Year, now.UtcDateTime.Month, 1);
}

/// <summary>Reads one account's preferences and budget (the settings page, the dashboard banner).</summary>
public sealed class AlertPreferencesReader(AppDbContext db, Usage.UsageQueries usage)
{
    public async Task<AlertPreferences> GetAsync(Guid userId, CancellationToken ct)
    {
        var row = await db.Set<AlertSettings>().AsNoTracking().FirstOrDefaultAsync(s => s.UserId == userId, ct);
        return row is null ? AlertPreferences.Default
            : new AlertPreferences(row.MonthlyBudgetMicros, row.Notify70, row.Notify90, row.Notify100, row.HardStop, row.LowBalanceEnabled, row.LowBalanceMicros);
    }

    public async Task<long?> GetDefaultBudgetAsync(Guid userId, CancellationToken ct) =>
        await db.Set<LedgerEntry>().AsNoTracking()
            .Where(l => l.UserId == userId && (l.Kind == LedgerKinds.Purchase || l.Kind == LedgerKinds.Grant) && l.AmountMicros > 0)
            .OrderByDescending(l => l.CreatedAt).ThenByDescending(l => l.Id)
            .Select(l => (long?)l.AmountMicros).FirstOrDefaultAsync(ct);

    /// <summary>The month's spend (pass it when the caller has it already) against the budget in force.</summary>
    public async Task<BudgetStatus> GetStatusAsync(Guid userId, DateTimeOffset now, long? monthSpendMicros, CancellationToken ct)
    {
        var period = BudgetStatus.PeriodOf(now);
        var spend = monthSpendMicros ?? (await usage.SummarizeAsync(userId, Usage.UsageQueries.StartOfDay(period),
            Usage.UsageQueries.StartOfDay(period.AddMonths(1)), Usage.UsageGrouping.Model, ct)).Total.CostMicros;
        return new BudgetStatus(await GetAsync(userId, ct), await GetDefaultBudgetAsync(userId, ct), spend, period);
    }
}
