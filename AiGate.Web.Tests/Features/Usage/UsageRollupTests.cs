using System.Globalization;
using AiGate.Web.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace AiGate.Web.Tests.Features.Usage;

/// <summary>
/// The rollup job against random raw usage (seeded, so a failure repeats): the rollups equal an
/// aggregation of the raw rows computed here in memory, long summaries read through them equal the
/// raw truth, re-runs change nothing, and late rows are folded in.
/// </summary>
public sealed class UsageRollupTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    private UsageRollup Rollup => app.Services.GetRequiredService<UsageRollup>();
    private UsageQueries Queries => app.Services.GetRequiredService<UsageQueries>();

    private async Task<List<(Guid User, Guid[] Keys)>> AccountsAsync(Random rng, int users)
    {
        var accounts = new List<(Guid, Guid[])>();
        for (var i = 0; i < users; i++)
            accounts.Add((await app.CreateUserAsync(), Enumerable.Range(0, rng.Next(1, 4)).Select(_ => Guid.NewGuid()).ToArray()));
        return accounts;
    }

    [Fact]
    public async Task Rollups_equal_a_direct_aggregation_of_random_raw_events_and_long_summaries_equal_raw_ones()
    {
        var rng = new Random(20261122);
        var now = DateTimeOffset.UtcNow;
        var accounts = await AccountsAsync(rng, 12);
        var rolledUp = new List<RawUsage>();

        // Two runs with events spread over twelve days in between, then events the rollup has not seen yet.
        foreach (var batch in new[] { 3000, 1500 })
        {
            var rows = UsageData.Generate(rng, accounts, batch, 12, now);
            await UsageData.InsertAsync(app.Database, rows);
            rolledUp.AddRange(rows);
            var result = await Rollup.RunAsync(CancellationToken.None);
            Assert.True(result.Hours > 100, $"only {result.Hours} hours rolled up");
        }
        var pending = UsageData.Generate(rng, accounts, 500, 12, now);
        await UsageData.InsertAsync(app.Database, pending);

        var users = accounts.Select(a => a.User).ToArray();
        Assert.Equal(ExpectedHours(rolledUp), await ActualHoursAsync(users));
        Assert.Equal(ExpectedDays(rolledUp), await ActualDaysAsync(users));

        // Summaries: longer than a day they read the rollups plus the raw rows after the watermark;
        // a day or less, raw rows only. Either way they equal the raw truth, at arbitrary edges.
        var all = rolledUp.Concat(pending).ToList();
        for (var i = 0; i < 40; i++)
        {
            var user = accounts[rng.Next(accounts.Count)].User;
            var length = TimeSpan.FromSeconds(i % 4 == 0 ? rng.Next(60, 86_400) : rng.Next(86_401, 13 * 86_400));
            var from = now.AddSeconds(-rng.Next(0, 13 * 86_400)).AddMilliseconds(-rng.Next(0, 1000));
            if (i % 5 == 1) from = UsageQueries.StartOfDay(DateOnly.FromDateTime(from.UtcDateTime));   // whole days, as the API asks
            var to = from + length;
            foreach (var grouping in new[] { UsageGrouping.Day, UsageGrouping.Model, UsageGrouping.Key })
            {
                var summary = await Queries.SummarizeAsync(user, from, to, grouping, CancellationToken.None);
                var expected = UsageData.Expected(all, user, from, to, grouping);
                Assert.Equal(expected.OrderBy(e => e.Key), UsageData.Actual(summary, grouping).OrderBy(e => e.Key));
                Assert.Equal(expected.Values.Aggregate(default(UsageTotals), (a, b) => a + b), summary.Total);
            }
        }
    }

    [Fact]
    public async Task Rerunning_is_a_no_op_and_recomputing_from_scratch_gives_the_same_rows()
    {
        var rng = new Random(7);
        var accounts = await AccountsAsync(rng, 4);
        await UsageData.InsertAsync(app.Database, UsageData.Generate(rng, accounts, 800, 5, DateTimeOffset.UtcNow));
        await Rollup.RunAsync(CancellationToken.None);
        var hourly = await UsageData.DumpAsync(app.Database, "usage_rollups_hourly", "t.user_id, t.hour, t.key_id, t.model_id, t.provider");
        var daily = await UsageData.DumpAsync(app.Database, "usage_rollups_daily", "t.user_id, t.day, t.key_id, t.model_id, t.provider");
        Assert.NotEqual("", hourly);

        var again = await Rollup.RunAsync(CancellationToken.None);
        Assert.Equal(0, again.Hours);
        Assert.Equal(again.FromEventId, again.ToEventId);
        Assert.Equal(hourly, await UsageData.DumpAsync(app.Database, "usage_rollups_hourly", "t.user_id, t.hour, t.key_id, t.model_id, t.provider"));
        Assert.Equal(daily, await UsageData.DumpAsync(app.Database, "usage_rollups_daily", "t.user_id, t.day, t.key_id, t.model_id, t.provider"));

        // Forget the watermark: every period is recomputed from the raw events, into the same rows.
        await app.Database.ExecuteAsync("update usage_rollup_state set last_event_id = 0");
        var full = await Rollup.RunAsync(CancellationToken.None);
        Assert.True(full.Hours > 0);
        Assert.Equal(hourly, await UsageData.DumpAsync(app.Database, "usage_rollups_hourly", "t.user_id, t.hour, t.key_id, t.model_id, t.provider"));
        Assert.Equal(daily, await UsageData.DumpAsync(app.Database, "usage_rollups_daily", "t.user_id, t.day, t.key_id, t.model_id, t.provider"));
    }

    [Fact]
    public async Task Late_events_inserted_with_an_old_created_at_after_a_run_are_included_on_the_next_run()
    {
        var user = await app.CreateUserAsync();
        var key = Guid.NewGuid();
        var now = DateTimeOffset.UtcNow;
        var onTime = new RawUsage(user, key, "test/x", "openai", now.AddMinutes(-5), 10, 5, 0, 100, 200, 300);
        await UsageData.InsertAsync(app.Database, [onTime]);
        await Rollup.RunAsync(CancellationToken.None);

        // Written after the run, but dated three days ago (a batch retried after an outage).
        var lateAt = UsageQueries.StartOfDay(DateOnly.FromDateTime(now.UtcDateTime).AddDays(-3)).AddHours(10).AddMinutes(15);
        var late = new RawUsage(user, key, "test/x", "openai", lateAt, 1000, 500, 0, 7777, 502, 1200);
        await UsageData.InsertAsync(app.Database, [late]);
        var week = (now.AddDays(-7), now.AddMinutes(1));

        // Before the next run the summary already counts it (raw rows past the watermark)…
        Assert.Equal(new UsageTotals(2, 1010, 505, 0, 7877, 1), (await Queries.SummarizeAsync(user, week.Item1, week.Item2, UsageGrouping.Day, default)).Total);
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from usage_rollups_hourly where user_id = '{user}' and hour = '{lateAt.AddMinutes(-15):O}'"));

        // …and the next run folds it into its hour and day.
        var run = await Rollup.RunAsync(CancellationToken.None);
        Assert.Equal(1, run.Hours);
        Assert.Equal("1|1000|500|7777|1|1200|1200", await app.Database.ScalarAsync<string>($"""
            select concat_ws('|', requests, prompt_tokens, completion_tokens, cost_micros, errors, latency_p50_ms, latency_p95_ms)
            from usage_rollups_hourly where user_id = '{user}' and hour = '{lateAt.AddMinutes(-15):O}'
            """));
        Assert.Equal(7777, await app.Database.ScalarAsync<long>($"select cost_micros from usage_rollups_daily where user_id = '{user}' and day = '{lateAt:yyyy-MM-dd}'"));
        Assert.Equal(new UsageTotals(2, 1010, 505, 0, 7877, 1), (await Queries.SummarizeAsync(user, week.Item1, week.Item2, UsageGrouping.Day, default)).Total);
    }

    [Fact]
    public async Task A_run_waits_for_usage_inserts_in_flight_so_a_smaller_id_committed_later_is_not_skipped()
    {
        var user = await app.CreateUserAsync();
        var key = Guid.NewGuid();
        await using var dataSource = app.Database.CreateDataSource();
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        // An insert in progress (a usage writer batch) holds an id that is not visible yet…
        await using (var insert = new NpgsqlCommand($"""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, estimated, streamed, status, latency_ms, created_at)
            values ('inflight-{Guid.NewGuid():N}', '{user}', '{key}', 'test/x', 'openai', 1, 1, 0, 42, false, false, 200, 10, now())
            """, connection, tx))
            await insert.ExecuteNonQueryAsync();
        // …while another commits a larger one.
        await UsageData.InsertAsync(app.Database, [new RawUsage(user, key, "test/x", "openai", DateTimeOffset.UtcNow, 1, 1, 0, 58, 200, 10)]);

        var run = Rollup.RunAsync(CancellationToken.None);
        await Task.Delay(500);
        Assert.False(run.IsCompleted, "the run must wait for the insert in flight");
        await tx.CommitAsync();
        await run;

        Assert.Equal(100, await app.Database.ScalarAsync<long>($"select sum(cost_micros)::bigint from usage_rollups_daily where user_id = '{user}'"));
    }

    [Fact]
    public async Task Two_runs_at_once_fold_each_event_in_once()
    {
        var rng = new Random(99);
        var accounts = await AccountsAsync(rng, 3);
        await Rollup.RunAsync(CancellationToken.None);   // whatever other tests left, out of the way
        var rows = UsageData.Generate(rng, accounts, 600, 3, DateTimeOffset.UtcNow);
        await UsageData.InsertAsync(app.Database, rows);

        // Two instances (or a trigger-now beside the schedule): one waits for the other, then finds nothing new.
        var runs = await Task.WhenAll(Rollup.RunAsync(CancellationToken.None), Rollup.RunAsync(CancellationToken.None));

        Assert.Equal(1, runs.Count(r => r.Hours > 0));
        var users = accounts.Select(a => a.User).ToArray();
        Assert.Equal(ExpectedHours(rows), await ActualHoursAsync(users));
        Assert.Equal(ExpectedDays(rows), await ActualDaysAsync(users));
    }

    /// <summary>PostgreSQL's percentile_disc: the first value whose cumulative share reaches the fraction.</summary>
    private static int PercentileDisc(List<int> sorted, double fraction) => sorted[Math.Max(0, (int)Math.Ceiling(fraction * sorted.Count) - 1)];

    private static SortedSet<string> ExpectedHours(IEnumerable<RawUsage> rows) => new(
        rows.GroupBy(r => (r.UserId, Hour: new DateTimeOffset(r.At.UtcTicks - r.At.UtcTicks % TimeSpan.TicksPerHour, TimeSpan.Zero), r.KeyId, r.Model, r.Provider))
            .Select(g =>
            {
                var latencies = g.Select(r => r.LatencyMs).Order().ToList();
                return Line(g.Key.UserId, g.Key.Hour.UtcDateTime.ToString("yyyy-MM-dd HH", CultureInfo.InvariantCulture), g.Key.KeyId, g.Key.Model, g.Key.Provider,
                    g.Count(), g.Sum(r => r.Prompt), g.Sum(r => r.Completion), g.Sum(r => r.Cached), g.Sum(r => r.Cost), g.Count(r => r.Status >= 400),
                    PercentileDisc(latencies, 0.5), PercentileDisc(latencies, 0.95));
            }), StringComparer.Ordinal);

    private static SortedSet<string> ExpectedDays(IEnumerable<RawUsage> rows) => new(
        rows.GroupBy(r => (r.UserId, Day: DateOnly.FromDateTime(r.At.UtcDateTime), r.KeyId, r.Model, r.Provider))
            .Select(g => Line(g.Key.UserId, g.Key.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), g.Key.KeyId, g.Key.Model, g.Key.Provider,
                g.Count(), g.Sum(r => r.Prompt), g.Sum(r => r.Completion), g.Sum(r => r.Cached), g.Sum(r => r.Cost), g.Count(r => r.Status >= 400))),
        StringComparer.Ordinal);

    private Task<SortedSet<string>> ActualHoursAsync(Guid[] users) => LinesAsync($"""
        select user_id, to_char(hour at time zone 'UTC', 'YYYY-MM-DD HH24'), key_id, model_id, provider, requests, prompt_tokens,
               completion_tokens, cached_tokens, cost_micros, errors, latency_p50_ms, latency_p95_ms
        from usage_rollups_hourly where user_id = any($1)
        """, users);

    private Task<SortedSet<string>> ActualDaysAsync(Guid[] users) => LinesAsync($"""
        select user_id, to_char(day, 'YYYY-MM-DD'), key_id, model_id, provider, requests, prompt_tokens, completion_tokens, cached_tokens,
               cost_micros, errors
        from usage_rollups_daily where user_id = any($1)
        """, users);

    private async Task<SortedSet<string>> LinesAsync(string sql, Guid[] users)
    {
        await using var dataSource = app.Database.CreateDataSource();
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new() { Value = users });
        await using var reader = await command.ExecuteReaderAsync();
        var lines = new SortedSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
            lines.Add(Line(Enumerable.Range(0, reader.FieldCount).Select(reader.GetValue).ToArray()));
        return lines;
    }

    private static string Line(params object[] values) => string.Join('|', values.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)));
}
