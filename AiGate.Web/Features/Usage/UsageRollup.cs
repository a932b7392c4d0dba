using Npgsql;

namespace AiGate.Web.Features.Usage;

/// <summary>What one rollup run did: the events it folded in, and the hours it rewrote.</summary>
public readonly record struct RollupResult(long FromEventId, long ToEventId, int Hours);

/// <summary>
/// Folds raw <c>usage_events</c> into hourly and daily rollups, and prunes old raw events.
///
/// Progress is a watermark on the events' identity id, not on time: <see cref="Credits.UsageWriter"/>
/// writes batches with the calls' own <c>created_at</c>, so a batch retried after an outage lands
/// with old timestamps ("late"), and a time watermark would skip it. Each run takes the events with
/// an id above the watermark, finds the (account, hour) buckets they touch, and recomputes those
/// buckets from every raw event in them with an id up to the run's high-water mark; then the days of
/// those hours from their hourly rows; then moves the watermark, all in one transaction. So a run is
/// idempotent (recomputing gives the same rows), late events are folded in by the next run, and the
/// rollups hold exactly the events with an id up to the watermark (which <see cref="UsageQueries"/>
/// relies on to add the newer raw events without counting any twice).
///
/// Ids are taken from a sequence when a row is inserted, but rows become visible when their
/// transaction commits, so a smaller id can appear after a larger one (two instances writing at
/// once). The high-water mark is therefore read under a SHARE lock on <c>usage_events</c>, which
/// waits for every insert in progress and holds new ones back for the moment the max(id) lookup
/// takes: no id at or below the mark can appear later.
///
/// Hours before <see cref="UsageRollupState.RawKeptFrom"/> may have lost their raw events to
/// pruning; an event that arrives that late is added to its hour instead (its latency percentiles
/// are then kept as they were, and its latency histogram stays unknown if it was).
///
/// A bucket's provider list cost is null when any of its calls has none (metered before migration 0016):
/// a partial sum would overstate the margin, so such revenue shows as "cost unknown" instead.
/// </summary>
public sealed partial class UsageRollup(NpgsqlDataSource dataSource, TimeProvider clock, ILogger<UsageRollup> logger)
{
    /// <summary>Serialises rollup and prune runs across instances (and a manual run beside a scheduled one).</summary>
    private const long AdvisoryLockKey = 0x5553_4147_4552_4f4c;   // "USAGEROL"

    private const string Sums = """
        count(*), coalesce(sum(e.prompt_tokens), 0)::bigint, coalesce(sum(e.completion_tokens), 0)::bigint,
        coalesce(sum(e.cached_tokens), 0)::bigint, coalesce(sum(e.cost_micros), 0)::bigint, count(*) filter (where e.status >= 400),
        percentile_disc(0.5) within group (order by e.latency_ms), percentile_disc(0.95) within group (order by e.latency_ms),
        case when count(e.provider_cost_micros) = count(*) then sum(e.provider_cost_micros)::bigint end,
        usage_histogram_sum(usage_latency_histogram(e.latency_ms)), count(*) filter (where e.byok)
        """;

    private const string Columns = "user_id, hour, key_id, model_id, provider, requests, prompt_tokens, completion_tokens, cached_tokens, " +
                                   "cost_micros, errors, latency_p50_ms, latency_p95_ms, provider_cost_micros, latency_histogram, byok_requests";

    public async Task<RollupResult> RunAsync(CancellationToken ct)
    {
        var high = await ReadHighWaterMarkAsync(ct);

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await ExecuteAsync(connection, tx, "select pg_advisory_xact_lock($1)", ct, AdvisoryLockKey);
        var (watermark, keptFrom) = await ReadStateAsync(connection, tx, ct);
        if (high <= watermark)
        {
            await tx.CommitAsync(ct);
            return new RollupResult(watermark, watermark, 0);
        }

        // The buckets the new events touch.
        await ExecuteAsync(connection, tx, "create temp table rollup_dirty (user_id uuid, hour timestamptz) on commit drop", ct);
        var hours = await ExecuteAsync(connection, tx, """
            insert into rollup_dirty
            select distinct user_id, date_trunc('hour', created_at, 'UTC') from usage_events where id > $1 and id <= $2
            """, ct, watermark, high);

        // Hours whose raw events are all still here: recompute them whole.
        await ExecuteAsync(connection, tx, """
            delete from usage_rollups_hourly r using rollup_dirty d
            where r.user_id = d.user_id and r.hour = d.hour and d.hour >= $1
            """, ct, keptFrom);
        await ExecuteAsync(connection, tx, $"""
            insert into usage_rollups_hourly ({Columns})
            select e.user_id, d.hour, e.key_id, e.model_id, e.provider, {Sums}
            from rollup_dirty d
            join usage_events e on e.user_id = d.user_id and e.created_at >= d.hour and e.created_at < d.hour + interval '1 hour'
            where d.hour >= $1 and e.id <= $2
            group by e.user_id, d.hour, e.key_id, e.model_id, e.provider
            """, ct, keptFrom, high);

        // Hours older than the raw retention: add the new events to what the rollup already holds.
        await ExecuteAsync(connection, tx, $"""
            insert into usage_rollups_hourly as r ({Columns})
            select e.user_id, date_trunc('hour', e.created_at, 'UTC'), e.key_id, e.model_id, e.provider, {Sums}
            from usage_events e
            where e.id > $1 and e.id <= $2 and e.created_at < $3
            group by 1, 2, 3, 4, 5
            on conflict (user_id, hour, key_id, model_id, provider) do update set
                requests = r.requests + excluded.requests, prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
                completion_tokens = r.completion_tokens + excluded.completion_tokens, cached_tokens = r.cached_tokens + excluded.cached_tokens,
                cost_micros = r.cost_micros + excluded.cost_micros, errors = r.errors + excluded.errors,
                provider_cost_micros = r.provider_cost_micros + excluded.provider_cost_micros,
                latency_histogram = case when r.latency_histogram is not null then usage_histogram_add(r.latency_histogram, excluded.latency_histogram) end,
                byok_requests = r.byok_requests + excluded.byok_requests
            """, ct, watermark, high, keptFrom);

        // Days: the sums of their hours (exact, and cheap: at most 24 rows per group). Latency
        // percentiles do not add up, so days carry none; the sum of their hours' latency histograms gives p50/p95 instead.
        await ExecuteAsync(connection, tx, """
            create temp table rollup_dirty_days on commit drop as
                select distinct user_id, (hour at time zone 'UTC')::date as day from rollup_dirty
            """, ct);
        await ExecuteAsync(connection, tx, """
            delete from usage_rollups_daily r using rollup_dirty_days d where r.user_id = d.user_id and r.day = d.day
            """, ct);
        await ExecuteAsync(connection, tx, """
            insert into usage_rollups_daily (user_id, day, key_id, model_id, provider, requests, prompt_tokens, completion_tokens,
                                             cached_tokens, cost_micros, errors, provider_cost_micros, latency_histogram, byok_requests)
            select h.user_id, d.day, h.key_id, h.model_id, h.provider, sum(h.requests)::bigint, sum(h.prompt_tokens)::bigint,
                   sum(h.completion_tokens)::bigint, sum(h.cached_tokens)::bigint, sum(h.cost_micros)::bigint, sum(h.errors)::bigint,
                   case when count(h.provider_cost_micros) = count(*) then sum(h.provider_cost_micros)::bigint end,
                   case when count(h.latency_histogram) = count(*) then usage_histogram_sum(h.latency_histogram) end, sum(h.byok_requests)::bigint
            from rollup_dirty_days d
            join usage_rollups_hourly h on h.user_id = d.user_id
                 and h.hour >= d.day::timestamp at time zone 'UTC' and h.hour < (d.day + 1)::timestamp at time zone 'UTC'
            group by h.user_id, d.day, h.key_id, h.model_id, h.provider
            """, ct);

        await ExecuteAsync(connection, tx, "update usage_rollup_state set last_event_id = $1, updated_at = $2 where id = 1",
            ct, high, clock.GetUtcNow());
        await tx.CommitAsync(ct);
        LogRolledUp(watermark, high, hours);
        return new RollupResult(watermark, high, hours);
    }

    /// <summary>
    /// Deletes raw events created before the start of the UTC day <paramref name="retentionDays"/> ago,
    /// but only those already in the rollups (an event not yet rolled up is kept until it is). Returns
    /// how many went.
    /// </summary>
    public async Task<int> PruneAsync(int retentionDays, CancellationToken ct)
    {
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        // A day boundary, so every hour and day bucket is either wholly kept or wholly pruned.
        var cutoff = UsageQueries.StartOfDay(today.AddDays(-retentionDays));

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await ExecuteAsync(connection, tx, "select pg_advisory_xact_lock($1)", ct, AdvisoryLockKey);
        var (watermark, keptFrom) = await ReadStateAsync(connection, tx, ct);
        var deleted = await ExecuteAsync(connection, tx, "delete from usage_events where created_at < $1 and id <= $2", ct, cutoff, watermark);
        if (cutoff > keptFrom)
            await ExecuteAsync(connection, tx, "update usage_rollup_state set raw_kept_from = $1, updated_at = $2 where id = 1", ct, cutoff, clock.GetUtcNow());
        await tx.CommitAsync(ct);
        LogPruned(deleted, cutoff);
        return deleted;
    }

    /// <summary>The largest usage event id below which no new id can still appear (see the class comment).</summary>
    private async Task<long> ReadHighWaterMarkAsync(CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        // Waiting longer would hold back the usage writer; the next run tries again.
        await ExecuteAsync(connection, tx, "set local lock_timeout = '5s'", ct);
        await ExecuteAsync(connection, tx, "lock table usage_events in share mode", ct);
        await using var command = new NpgsqlCommand("select coalesce(max(id), 0) from usage_events", connection, tx);
        var high = (long)(await command.ExecuteScalarAsync(ct))!;
        await tx.CommitAsync(ct);
        return high;
    }

    private static async Task<(long Watermark, DateTimeOffset KeptFrom)> ReadStateAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("select last_event_id, raw_kept_from from usage_rollup_state where id = 1 for update", connection, tx);
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) throw new InvalidOperationException("usage_rollup_state has no row; migration 0009 inserts it.");
        return (reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1));
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken ct, params object[] values)
    {
        await using var command = new NpgsqlCommand(sql, connection, tx);
        foreach (var value in values) command.Parameters.Add(new() { Value = value });
        return await command.ExecuteNonQueryAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage rollup folded in events {FromId} to {ToId} ({Hours} account hours)")]
    private partial void LogRolledUp(long fromId, long toId, int hours);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pruned {Count} raw usage events created before {Cutoff}")]
    private partial void LogPruned(int count, DateTimeOffset cutoff);
}
