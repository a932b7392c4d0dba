using System.Collections.Frozen;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Alerts;

/// <summary>A hard-stopped account, as every instance holds it in memory.</summary>
public sealed record StoppedAccount(DateOnly Period, long BudgetMicros, long SpendMicros);

/// <summary>
/// The accounts whose hard stop is in force, in memory on every instance, so the gateway checks it
/// with a dictionary lookup and no database round trip. The truth is the <c>budget_stops</c> table,
/// written by the alerts job and the settings page under one advisory lock (<see cref="SyncAsync"/>);
/// a change publishes a <c>budget-stops</c> notice and every instance re-reads the table (one small
/// query). The table is also re-read every <see cref="AlertsOptions.StopsRefreshSeconds"/>, and after
/// the notification listener reconnects, in case a notice was missed.
///
/// Lag: a stop starts at most one alerts-job interval (60 s by default) plus the usage writer's flush
/// (200 ms) after the spend crossed the budget; a raised budget or a switched-off stop lifts it as soon as
/// the notice arrives (milliseconds); a new month lifts it at midnight UTC on the 1st on every instance,
/// because an entry only counts in its own month.
/// </summary>
public sealed partial class BudgetStops(NpgsqlDataSource dataSource, CacheNotifications notifications, IOptions<AlertsOptions> options,
    TimeProvider clock, ILogger<BudgetStops> logger) : BackgroundService
{
    public const string Notice = "budget-stops";
    /// <summary>Serialises every write of budget_stops (job and settings page), so a stale computation never re-adds a lifted stop.</summary>
    public const long AdvisoryLockKey = 0x4255_4447_4554_5354;   // "BUDGETST"

    private volatile FrozenDictionary<Guid, StoppedAccount> _stopped = FrozenDictionary<Guid, StoppedAccount>.Empty;
    private readonly SemaphoreSlim _reload = new(0, 1);

    /// <summary>The account's stop for the current UTC month, if any. The gateway's check: no I/O.</summary>
    public StoppedAccount? Find(Guid userId) =>
        _stopped.TryGetValue(userId, out var stop) && stop.Period == BudgetStatus.PeriodOf(clock.GetUtcNow()) ? stop : null;

    /// <summary>Re-reads the table now (tests, and the instance that just changed it).</summary>
    public async Task ReloadAsync(CancellationToken ct)
    {
        var map = new Dictionary<Guid, StoppedAccount>();
        await using var command = dataSource.CreateCommand("select user_id, period, budget_micros, spend_micros from budget_stops");
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            map[reader.GetGuid(0)] = new StoppedAccount(reader.GetFieldValue<DateOnly>(1), reader.GetInt64(2), reader.GetInt64(3));
        _stopped = map.ToFrozenDictionary();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        notifications.Subscribe(payload =>
        {
            if (payload is null or Notice && _reload.CurrentCount == 0)
            {
                try { _reload.Release(); } catch (SemaphoreFullException) { }   // a reload is already asked for
            }
        });
        var every = TimeSpan.FromSeconds(options.Value.StopsRefreshSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ReloadAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
            {
                LogReloadFailed(ex);   // keep the last known set; fail open for a moment rather than stop everyone
            }
            try { await _reload.WaitAsync(every, stoppingToken); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>
    /// Makes <c>budget_stops</c> agree with the given month spends for <paramref name="period"/>: an account
    /// is stopped when its hard stop is on and the spend reached its budget (the user's, else the default),
    /// both read here, under the lock, so they are current. With <paramref name="onlyThese"/> only those
    /// accounts are looked at (the settings page); otherwise every stop not in the list goes (the job,
    /// which passes every account that spent this month). Publishes the notice when anything changed.
    /// Call inside a transaction.
    /// </summary>
    public static async Task<bool> SyncAsync(NpgsqlConnection connection, NpgsqlTransaction tx, DateOnly period, IReadOnlyList<(Guid UserId, long Spend)> spends,
        bool onlyThese, DateTimeOffset now, CancellationToken ct)
    {
        await using (var lockCommand = new NpgsqlCommand("select pg_advisory_xact_lock($1)", connection, tx))
        {
            lockCommand.Parameters.Add(new() { Value = AdvisoryLockKey });
            await lockCommand.ExecuteNonQueryAsync(ct);
        }
        var users = spends.Select(s => s.UserId).ToArray();
        var amounts = spends.Select(s => s.Spend).ToArray();
        var desired = $"""
            select c.user_id, c.spend, b.budget
            from unnest($1::uuid[], $2::int8[]) as c(user_id, spend)
            join alert_settings a on a.user_id = c.user_id and a.hard_stop
            cross join lateral (select coalesce(a.monthly_budget_micros, {string.Format(AlertPreferences.DefaultBudgetSql, "c.user_id")}) as budget) b
            where b.budget > 0 and c.spend >= b.budget
            """;
        var scope = onlyThese ? "s.user_id = any($1) and" : "";
        var removed = await ExecuteAsync(connection, tx, $"""
            delete from budget_stops s
            where {scope} (s.period <> $3 or not exists (select 1 from ({desired}) d where d.user_id = s.user_id))
            """, ct, users, amounts, period);
        var added = await ExecuteAsync(connection, tx, $"""
            insert into budget_stops (user_id, period, budget_micros, spend_micros, created_at)
            select user_id, $3, budget, spend, $4 from ({desired}) d
            on conflict (user_id) do nothing
            """, ct, users, amounts, period, now);
        if (removed + added == 0) return false;
        await CacheNotifications.PublishAsync(connection, tx, Notice, ct);
        return true;
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken ct, params object[] values)
    {
        await using var command = new NpgsqlCommand(sql, connection, tx);
        foreach (var value in values) command.Parameters.Add(new() { Value = value });
        return await command.ExecuteNonQueryAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not re-read the hard-stopped accounts; keeping the last known set")]
    private partial void LogReloadFailed(Exception ex);
}
