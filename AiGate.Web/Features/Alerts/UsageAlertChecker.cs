using AiGate.Web.Data;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Alerts;

/// <summary>What one alerts run did.</summary>
public readonly record struct AlertRunResult(int BudgetAlerts, int LowBalanceAlerts, bool StopsChanged);

/// <summary>
/// The alerts job's body. For the UTC month of <c>now</c>: every account's spend (<see cref="UsageQueries.MonthSpendsAsync"/>)
/// against its budget; each enabled threshold (70, 90, 100 %) that is reached and not yet recorded gets
/// its <c>usage_alerts</c> row and its outbox e-mail in one transaction. The row's key (account, month, threshold) is the guard: a
/// second instance or a retried run inserting the same row waits for the first, then inserts nothing
/// and sends nothing. The same for low balances (<c>low_balance_alerts</c>, one row per crossing,
/// deleted when the balance is back up). Then it syncs the hard stops (<see cref="BudgetStops.SyncAsync"/>).
/// Accounts are organizations: each e-mail goes to the organization's owner and billing members (<see cref="MoneyRecipients"/>).
/// </summary>
public sealed partial class UsageAlertChecker(AppDbContext db, EmailOutbox outbox, NpgsqlDataSource dataSource, UsageQueries usage, BudgetStops stops,
    IOptions<EmailOptions> emailOptions, ILogger<UsageAlertChecker> logger)
{
    private sealed record Account(Guid UserId, long Spend, long? Budget, AlertPreferences Preferences);

    public async Task<AlertRunResult> RunAsync(DateTimeOffset now, CancellationToken ct)
    {
        var period = BudgetStatus.PeriodOf(now);
        var accounts = await ReadSpendsAsync(period, ct);
        var sent = await ReadSentAsync(period, ct);
        var recipients = await MoneyRecipients.ForAsync(dataSource, [.. accounts.Select(a => a.UserId)], ct);

        var budgetAlerts = 0;
        foreach (var account in accounts)
        {
            if (account.Budget is not { } budget || budget <= 0 || !recipients.TryGetValue(account.UserId, out var to)) continue;
            foreach (var threshold in AlertPreferences.Thresholds)
            {
                if (!account.Preferences.Notifies(threshold) || sent.Contains((account.UserId, threshold))) continue;
                // Integer math: spend / budget >= threshold %.
                if (account.Spend * 100 < budget * threshold) continue;
                if (await SendBudgetAlertAsync(account, to, budget, threshold, period, now, ct)) budgetAlerts++;
            }
        }

        var lowBalanceAlerts = await CheckLowBalancesAsync(now, ct);

        bool changed;
        await using (var connection = await dataSource.OpenConnectionAsync(ct))
        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            changed = await BudgetStops.SyncAsync(connection, tx, period, [.. accounts.Select(a => (a.UserId, a.Spend))], onlyThese: false, now, ct);
            await tx.CommitAsync(ct);
        }
        if (changed) await stops.ReloadAsync(ct);   // this instance at once; the others on the notice
        if (budgetAlerts + lowBalanceAlerts > 0) LogSent(budgetAlerts, lowBalanceAlerts);
        return new AlertRunResult(budgetAlerts, lowBalanceAlerts, changed);
    }

    /// <summary>Every account that spent something in the month, with its budget in force and its choices.</summary>
    private async Task<List<Account>> ReadSpendsAsync(DateOnly period, CancellationToken ct)
    {
        var spends = await usage.MonthSpendsAsync(period, ct);
        await using var command = dataSource.CreateCommand($"""
            select s.user_id, s.spend, coalesce(a.monthly_budget_micros, {string.Format(AlertPreferences.DefaultBudgetSql, "s.user_id")}),
                   coalesce(a.notify70, true), coalesce(a.notify90, true), coalesce(a.notify100, true),
                   coalesce(a.hard_stop, false), a.monthly_budget_micros
            from unnest($1::uuid[], $2::int8[]) as s(user_id, spend)
            left join alert_settings a on a.user_id = s.user_id
            where s.spend > 0
            """);
        command.Parameters.Add(new() { Value = spends.Select(s => s.UserId).ToArray() });
        command.Parameters.Add(new() { Value = spends.Select(s => s.Spend).ToArray() });
        var accounts = new List<Account>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var preferences = new AlertPreferences(reader.IsDBNull(7) ? null : reader.GetInt64(7), reader.GetBoolean(3), reader.GetBoolean(4),
                reader.GetBoolean(5), reader.GetBoolean(6), true, AlertPreferences.DefaultLowBalanceMicros);
            accounts.Add(new Account(reader.GetGuid(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2), preferences));
        }
        return accounts;
    }

    private async Task<HashSet<(Guid, int)>> ReadSentAsync(DateOnly period, CancellationToken ct) =>
        [.. (await db.Set<UsageAlert>().AsNoTracking().Where(a => a.Period == period).Select(a => new { a.UserId, a.Threshold }).ToListAsync(ct))
            .Select(a => (a.UserId, a.Threshold))];

    /// <summary>The guard row and the e-mail, together or not at all. False when the row existed (another run sent it).</summary>
    private async Task<bool> SendBudgetAlertAsync(Account account, List<MoneyRecipient> to, long budget, int threshold, DateOnly period, DateTimeOffset now,
        CancellationToken ct)
    {
        var top = await usage.SummarizeAsync(account.UserId, UsageQueries.StartOfDay(period), UsageQueries.StartOfDay(period.AddMonths(1)),
            UsageGrouping.Model, ct);
        var content = EmailTemplates.UsageAlert(threshold, account.Spend, budget, period, account.Preferences.HardStop,
            [.. top.Groups.Take(3).Select(g => (g.Model!, g.Totals.CostMicros))], Link("/billing"), Link("/Account/Manage/Alerts"));

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var inserted = await db.Database.ExecuteSqlInterpolatedAsync($"""
            insert into usage_alerts (user_id, period, threshold, budget_micros, spend_micros, created_at)
            values ({account.UserId}, {period}, {threshold}, {budget}, {account.Spend}, {now})
            on conflict do nothing
            """, ct);
        if (inserted == 0)
        {
            await tx.RollbackAsync(ct);
            return false;
        }
        foreach (var recipient in to) outbox.Enqueue(recipient.Email, content, recipient.UserId);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>Re-arms accounts whose balance is back up, then sends one e-mail per account newly under its amount.</summary>
    private async Task<int> CheckLowBalancesAsync(DateTimeOffset now, CancellationToken ct)
    {
        // A constant, not input: the SQL below is built from it.
        var threshold = $"coalesce(a.low_balance_micros, {AlertPreferences.DefaultLowBalanceMicros})";
        await using (var rearm = dataSource.CreateCommand($"""
            delete from low_balance_alerts l using credit_accounts c left join alert_settings a on a.user_id = c.user_id
            where l.user_id = c.user_id and c.balance_micros >= {threshold}
            """))
            await rearm.ExecuteNonQueryAsync(ct);

        var due = new List<LowBalanceRow>();
        await using (var command = dataSource.CreateCommand($"""
            select c.user_id, c.balance_micros, {threshold}
            from credit_accounts c
            left join alert_settings a on a.user_id = c.user_id
            where coalesce(a.low_balance_enabled, true) and c.balance_micros < {threshold}
              and not exists (select 1 from low_balance_alerts l where l.user_id = c.user_id)
            """))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
                due.Add(new LowBalanceRow(reader.GetGuid(0), reader.GetInt64(1), reader.GetInt64(2)));
        }
        var recipients = await MoneyRecipients.ForAsync(dataSource, [.. due.Select(d => d.UserId)], ct);

        var sent = 0;
        foreach (var row in due)
        {
            // Nobody to tell (no confirmed owner or billing address): no guard row either, so it goes once someone confirms.
            if (!recipients.TryGetValue(row.UserId, out var to)) continue;
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var inserted = await db.Database.ExecuteSqlInterpolatedAsync($"""
                insert into low_balance_alerts (user_id, threshold_micros, balance_micros, created_at)
                values ({row.UserId}, {row.Threshold}, {row.Balance}, {now})
                on conflict do nothing
                """, ct);
            if (inserted == 0)
            {
                await tx.RollbackAsync(ct);
                continue;
            }
            var content = EmailTemplates.LowBalance(row.Balance, row.Threshold, Link("/billing"), Link("/Account/Manage/Alerts"));
            foreach (var recipient in to) outbox.Enqueue(recipient.Email, content, recipient.UserId);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            sent++;
        }
        return sent;
    }

    private sealed record LowBalanceRow(Guid UserId, long Balance, long Threshold);

    /// <summary>
    /// Jobs have no request to take an address from: links use <c>Email:BaseUrl</c> (required in
    /// Production), else the address <c>scripts/run.sh</c> serves locally.
    /// </summary>
    private string Link(string path) => Accounts.AccountLinks.ForJob(emailOptions.Value, path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage alerts: {BudgetAlerts} budget e-mail(s), {LowBalanceAlerts} low-balance e-mail(s) enqueued")]
    private partial void LogSent(int budgetAlerts, int lowBalanceAlerts);
}
