using Npgsql;

namespace AiGate.Web.Features.Alerts;

/// <summary>A user's alert choices, with the defaults filled in for users who never saved any.</summary>
public sealed record AlertPreferences(long? MonthlyBudgetMicros, bool Notify70, bool Notify90, bool Notify100, bool HardStop,
    bool LowBalanceEnabled, long LowBalanceMicros)
{
    /// <summary>$1: the low-balance amount until the user picks another (the dashboard warns under it too).</summary>
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

    public static DateOnly PeriodOf(DateTimeOffset now) => new(now.UtcDateTime.Year, now.UtcDateTime.Month, 1);
}

/// <summary>Reads one account's preferences and budget (the settings page, the dashboard banner).</summary>
public sealed class AlertPreferencesReader(NpgsqlDataSource dataSource, Usage.UsageQueries usage)
{
    /// <summary>The month's spend (pass it when the caller has it already) against the budget in force.</summary>
    public async Task<BudgetStatus> GetStatusAsync(Guid userId, DateTimeOffset now, long? monthSpendMicros, CancellationToken ct)
    {
        var period = BudgetStatus.PeriodOf(now);
        var spend = monthSpendMicros ?? await usage.MonthSpendAsync(userId, period, ct);
        // The settings (none when never saved) and the default budget in one statement.
        await using var command = dataSource.CreateCommand($"""
            select a.user_id is not null, a.monthly_budget_micros, a.notify70, a.notify90, a.notify100, a.hard_stop,
                   a.low_balance_enabled, a.low_balance_micros, {string.Format(AlertPreferences.DefaultBudgetSql, "$1")}
            from (select $1::uuid as user_id) u left join alert_settings a on a.user_id = u.user_id
            """);
        command.Parameters.Add(new() { Value = userId });
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var preferences = !reader.GetBoolean(0) ? AlertPreferences.Default
            : new AlertPreferences(reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetBoolean(4),
                reader.GetBoolean(5), reader.GetBoolean(6), reader.GetInt64(7));
        return new BudgetStatus(preferences, reader.IsDBNull(8) ? null : reader.GetInt64(8), spend, period);
    }
}
