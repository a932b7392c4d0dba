using System.Threading.Channels;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Infrastructure.Telemetry;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace AiGate.Web.Features.Credits;

/// <summary>
/// One metered call, as it leaves the request path. <paramref name="MemberId"/>: the member whose monthly spend it counts
/// (<see cref="KeyIdentity.SpendMember"/>); <paramref name="LeaseMemberId"/>: the member of the lease it was reserved from.
/// </summary>
public sealed record UsageRecord(
    string RequestId, Guid UserId, Guid KeyId, Guid LeaseId, string ModelId, string Provider, TokenUsage Usage, long CostMicros,
    bool Streamed, int Status, int LatencyMs, int? TimeToFirstByteMs, DateTimeOffset At, long? ProviderCostMicros = null, bool Byok = false,
    CallError? Error = null, Guid? MemberId = null, Guid? LeaseMemberId = null);

/// <summary>
/// Writes usage off the request path: requests put a <see cref="UsageRecord"/> on a bounded channel;
/// every <see cref="CreditsOptions.FlushIntervalMs"/> (or as soon as 1,000 records wait) one SQL statement inserts
/// the usage rows and their ledger entries, debits the balances, shrinks the leases, adds to the
/// keys' spend and to the members' monthly spend (moving a member lease's held budget to spent), all
/// in one transaction. The request id is unique in both tables, so a batch retried
/// after an unclear commit lands once. A failing database is retried until it answers; a record
/// PostgreSQL refuses for good (<see cref="IsPermanent"/>) is set aside in <c>usage_dead_letters</c> and
/// the rest of its batch is written. Graceful shutdown drains the channel in <see cref="StopAsync"/>.
/// </summary>
public sealed partial class UsageWriter(NpgsqlDataSource dataSource, CreditLeases leases, IOptions<CreditsOptions> options, ILogger<UsageWriter> logger)
    : BackgroundService
{
    private const int MaxBatch = 1000;
    private readonly Channel<UsageRecord> _channel = Channel.CreateBounded<UsageRecord>(
        new BoundedChannelOptions(100_000) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private long _pending;
    /// <summary>Records in the channel, not yet taken into a batch.</summary>
    private long _queued;
    /// <summary>Released when a whole batch is waiting: the writer stops waiting out its interval.</summary>
    private readonly SemaphoreSlim _batchWaiting = new(0);

    /// <summary>Records not yet committed (for tests and shutdown).</summary>
    public long Pending => Interlocked.Read(ref _pending);

    public ValueTask EnqueueAsync(UsageRecord record, CancellationToken ct)
    {
        Interlocked.Increment(ref _pending);
        AiGateTelemetry.WriterBacklog.Add(1);
        if (Interlocked.Increment(ref _queued) == MaxBatch) _batchWaiting.Release();
        if (_channel.Writer.TryWrite(record)) return ValueTask.CompletedTask;
        return _channel.Writer.WriteAsync(record, ct);   // backpressure only when 100,000 records wait
    }

    /// <summary>
    /// A batch goes when the interval has passed since its first record or as soon as a whole batch (1,000) waits,
    /// whichever comes first: a backlog is written batch after batch. (Waiting out the interval before every batch
    /// capped the writer at 1,000 records per interval and a flush, about 4,000 calls a second; calls beyond that piled
    /// up in the channel until its bound made every request wait for the writer, issue 16.)
    /// </summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<UsageRecord>(MaxBatch);
        var interval = TimeSpan.FromMilliseconds(options.Value.FlushIntervalMs);
        try
        {
            while (await _channel.Reader.WaitToReadAsync(stoppingToken))
            {
                // A signal left from a batch already taken must not cut the next interval short.
                while (_batchWaiting.Wait(0)) { }
                if (Interlocked.Read(ref _queued) < MaxBatch) await _batchWaiting.WaitAsync(interval, stoppingToken);
                while (batch.Count < MaxBatch && _channel.Reader.TryRead(out var record))
                {
                    batch.Add(record);
                    Interlocked.Decrement(ref _queued);
                }
                await FlushWithRetryAsync(batch, stoppingToken);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
        // A batch taken but not yet written when the stop came is still in the list.
        if (batch.Count > 0) await FlushWithRetryAsync(batch, CancellationToken.None, attempts: 5);
    }

    /// <summary>
    /// Graceful shutdown writes everything queued before the process ends (RELIABILITY: diff 0 on a clean
    /// stop). The host's shutdown token may already have run out when this service's turn comes (the server
    /// drained streams first), and <see cref="BackgroundService.StopAsync"/> stops waiting when it does, so
    /// the drain is awaited here on its own terms: every record, each batch tried up to 5 times.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(CancellationToken.None);   // the loop ends and writes the batch it held
        _channel.Writer.TryComplete();
        var batch = new List<UsageRecord>(MaxBatch);
        while (_channel.Reader.TryRead(out var record))
        {
            batch.Add(record);
            Interlocked.Decrement(ref _queued);
            if (batch.Count == MaxBatch)
            {
                await FlushWithRetryAsync(batch, CancellationToken.None, attempts: 5);
                batch.Clear();
            }
        }
        if (batch.Count > 0) await FlushWithRetryAsync(batch, CancellationToken.None, attempts: 5);
        LogDrained(Pending);
    }

    private async Task FlushWithRetryAsync(List<UsageRecord> batch, CancellationToken ct, int attempts = int.MaxValue)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                Committed(batch, await FlushAsync(batch, ct));
                AiGateTelemetry.WriterFlush.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                return;
            }
            catch (PostgresException ex) when (IsPermanent(ex))
            {
                // One bad record must not block the rest: write them one by one and set the refused ones aside.
                LogBatchRefused(ex.SqlState, batch.Count);
                await FlushOneByOneAsync(batch, ct, attempts);
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException && attempt < attempts)
            {
                LogFlushFailed(ex, batch.Count, delay.TotalMilliseconds);
                try { await Task.Delay(delay, ct); } catch (OperationCanceledException) { (ct, attempts) = Stopping(attempt, attempts); }
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    private async Task FlushOneByOneAsync(List<UsageRecord> batch, CancellationToken ct, int attempts)
    {
        var one = new List<UsageRecord>(1);
        foreach (var record in batch)
        {
            one.Clear();
            one.Add(record);
            var delay = TimeSpan.FromMilliseconds(100);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    Committed(one, await FlushAsync(one, ct));
                    break;
                }
                catch (PostgresException ex) when (IsPermanent(ex))
                {
                    await DeadLetterWithRetryAsync(record, ex, ct, attempts);
                    break;
                }
                catch (Exception ex) when (ex is NpgsqlException or TimeoutException && attempt < attempts)
                {
                    LogFlushFailed(ex, 1, delay.TotalMilliseconds);
                    try { await Task.Delay(delay, ct); } catch (OperationCanceledException) { (ct, attempts) = Stopping(attempt, attempts); }
                    delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
                }
            }
        }
    }

    /// <summary>
    /// Shutdown came while retrying: go on without the token (the records must still be written), but only a few
    /// more times, so a database that stays down cannot hold the process until the platform kills it.
    /// </summary>
    private static (CancellationToken, int) Stopping(int attempt, int attempts) => (CancellationToken.None, Math.Min(attempts, attempt + 5));

    /// <summary>
    /// Refusals a retry cannot fix: data exceptions (class 22: out of range, string too long, bad value) and
    /// integrity constraint violations (class 23). Everything else (connection, serialization, shutdown) is
    /// retried as before.
    /// </summary>
    internal static bool IsPermanent(PostgresException ex) =>
        ex.SqlState.StartsWith("22", StringComparison.Ordinal) || ex.SqlState.StartsWith("23", StringComparison.Ordinal);

    private void Committed(List<UsageRecord> batch, List<(Guid KeyId, long SpentMicros)> keys)
    {
        foreach (var record in batch) leases.OnFlushed(record.UserId, record.LeaseMemberId, record.LeaseId, record.KeyId, record.CostMicros);
        foreach (var (keyId, spent) in keys) leases.OnKeySpentRead(keyId, spent);
        Interlocked.Add(ref _pending, -batch.Count);
        AiGateTelemetry.WriterBacklog.Add(-batch.Count);
    }

    /// <summary>
    /// Sets a refused record aside. Nothing is charged for it: its usage row, ledger entry and balance debit
    /// are what PostgreSQL refused, so its cost goes back to the lease (the user keeps the credit) and an
    /// admin decides from /Admin/UsageDeadLetters whether to charge it by hand.
    /// </summary>
    private async Task DeadLetterWithRetryAsync(UsageRecord record, PostgresException refusal, CancellationToken ct, int attempts)
    {
        LogDeadLettered(refusal, record.RequestId, record.UserId, refusal.SqlState);
        var delay = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var command = dataSource.CreateCommand("""
                    insert into usage_dead_letters (request_id, user_id, key_id, cost_micros, record, sql_state, error, created_at)
                    values ($1, $2, $3, $4, $5::jsonb, $6, $7, now())
                    """);
                command.Parameters.Add(new() { Value = record.RequestId });
                command.Parameters.Add(new() { Value = record.UserId });
                command.Parameters.Add(new() { Value = record.KeyId });
                command.Parameters.Add(new() { Value = record.CostMicros });
                command.Parameters.Add(new() { Value = System.Text.Json.JsonSerializer.Serialize(record) });
                command.Parameters.Add(new() { Value = refusal.SqlState });
                command.Parameters.Add(new() { Value = refusal.MessageText });
                await command.ExecuteNonQueryAsync(ct);
                break;
            }
            catch (PostgresException ex) when (IsPermanent(ex))
            {
                // Not even the dead-letter table takes it (e.g. a NUL character jsonb refuses): the log line is all that is left.
                LogDeadLetterRefused(ex, record.RequestId, record.UserId, record.KeyId, record.CostMicros);
                break;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException && attempt < attempts)
            {
                LogFlushFailed(ex, 1, delay.TotalMilliseconds);
                try { await Task.Delay(delay, ct); } catch (OperationCanceledException) { (ct, attempts) = Stopping(attempt, attempts); }
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
        leases.OnDeadLettered(record.UserId, record.LeaseMemberId, record.LeaseId, record.KeyId, record.CostMicros);
        Interlocked.Decrement(ref _pending);
        AiGateTelemetry.WriterBacklog.Add(-1);
    }

    /// <summary>The batch's records, and the deletion of the checkpoints their streams left (the stream ended here).</summary>
    private const string BatchInput = """
        with input as (
            select * from unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int8[], $8::int8[],
                                 $9::int8[], $10::int8[], $11::bool[], $12::bool[], $13::int4[], $14::int4[], $15::int4[], $16::timestamptz[],
                                 $17::int8[], $18::bool[], $19::text[], $20::text[], $21::uuid[])
                as t(request_id, user_id, key_id, lease_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                     cost_micros, estimated, streamed, status, latency_ms, ttfb_ms, created_at, provider_cost_micros, byok,
                     error_code, error_message, member_id)),
        checkpoints as (delete from stream_checkpoints c using input i where c.request_id = i.request_id),
        """;

    /// <summary>
    /// The checkpoints of streams whose instance died (their lease expired or was swept), taken as those streams'
    /// usage: estimated, at the HTTP status the client got (200), timed from start to last checkpoint.
    /// </summary>
    private const string OrphanedCheckpointsInput = """
        with input as (
            delete from stream_checkpoints c
            where not exists (select 1 from credit_leases l where l.id = c.lease_id and l.expires_at >= now())
            returning request_id, user_id, key_id, lease_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                      cost_micros, true as estimated, true as streamed, 200 as status,
                      least(extract(epoch from updated_at - started_at) * 1000, 2147483647)::int4 as latency_ms, null::int4 as ttfb_ms,
                      updated_at as created_at, provider_cost_micros, byok, null::text as error_code, null::text as error_message, member_id),
        """;

    /// <summary>
    /// Charges <c>input</c>: usage rows and ledger entries (both unique per request, so a record written twice lands
    /// once), balances debited, leases shrunk, keys' spend raised, in one statement. Returns each touched key's spend.
    /// </summary>
    private const string Charge = """
        usage as (
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, estimated, streamed, status, latency_ms, time_to_first_byte_ms, created_at,
                                      provider_cost_micros, byok, error_code, error_message)
            select request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                   cost_micros, estimated, streamed, status, latency_ms, ttfb_ms, created_at, provider_cost_micros, byok,
                   error_code, error_message from input
            on conflict (request_id) do nothing
            returning request_id),
        fresh as (select input.* from input join usage using (request_id)),
        ledger as (
            insert into ledger_entries (user_id, kind, amount_micros, reference, idempotency_key, created_at)
            select user_id, 'usage', -cost_micros, request_id, 'usage:' || request_id, created_at from fresh where cost_micros > 0
            on conflict (idempotency_key) do nothing),
        lease_rows as (
            update credit_leases l set held_micros = greatest(l.held_micros - s.total, 0)
            from (select lease_id, sum(cost_micros) as total from fresh group by lease_id) s where l.id = s.lease_id
            returning l.user_id, l.member_id, s.total),
        -- Held credit shrinks only for spend of leases that still exist: a swept lease's hold went back already.
        accounts as (
            update credit_accounts a set balance_micros = a.balance_micros - s.total,
                                         held_micros = greatest(a.held_micros - coalesce(h.total, 0), 0), updated_at = now()
            from (select user_id, sum(cost_micros) as total from fresh group by user_id) s
                 left join (select user_id, sum(total) as total from lease_rows group by user_id) h using (user_id)
            where a.user_id = s.user_id
            returning a.user_id),
        -- The members' monthly spend, in the UTC month of each call (a call of a month already over counts for nobody), and
        -- a member lease's held budget shrinks with its spend, as the account's held credit does. Locks are taken in the
        -- order every statement on leases takes them (lease rows, accounts, then members: `locked` makes the accounts go
        -- first), so a flush and a member's lease acquisition wait for each other instead of deadlocking.
        member_month as (
            select user_id, member_id, date_trunc('month', created_at at time zone 'UTC')::date as month, sum(cost_micros) as total
            from fresh where member_id is not null group by 1, 2, 3),
        members as (
            insert into member_budgets as b (org_id, user_id, month, spent_micros, held_micros, updated_at)
            select distinct on (user_id, member_id) user_id, member_id, month, total, 0, now()
            from member_month cross join (select count(*) from accounts) locked order by user_id, member_id, month desc
            on conflict (org_id, user_id) do update set
                spent_micros = case when b.month = excluded.month then b.spent_micros + excluded.spent_micros
                                    when b.month < excluded.month then excluded.spent_micros else b.spent_micros end,
                month = greatest(b.month, excluded.month),
                held_micros = greatest(b.held_micros -
                    coalesce((select sum(h.total) from lease_rows h where h.user_id = b.org_id and h.member_id = b.user_id), 0), 0),
                updated_at = now()),
        keys as (
            update api_keys k set spent_micros = k.spent_micros + s.total
            from (select key_id, sum(cost_micros) as total from fresh group by key_id) s where k.id = s.key_id
            returning k.id, k.spent_micros)
        select id, spent_micros from keys
        """;

    /// <summary>
    /// Charges the checkpoints of streams cut off by a dead instance (see <see cref="StreamCheckpoints"/>) and deletes
    /// them, in one statement; returns how many API keys it charged. Any instance may run it: concurrent sweeps delete each
    /// row once, and a stream whose usage was written after all (a frozen instance that came back) is not charged again.
    /// </summary>
    public async Task<int> ChargeOrphanedCheckpointsAsync(CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(OrphanedCheckpointsInput + Charge);
        var charged = 0;
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            leases.OnKeySpentRead(reader.GetGuid(0), reader.GetInt64(1));
            charged++;
        }
        return charged;
    }

    /// <summary>Writes the batch; returns each touched key's spend as committed (for the per-key credit limit).</summary>
    private async Task<List<(Guid KeyId, long SpentMicros)>> FlushAsync(List<UsageRecord> batch, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand(BatchInput + Charge);
        var p = command.Parameters;
        p.Add(new() { Value = batch.Select(r => r.RequestId).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.UserId).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.KeyId).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.LeaseId).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.ModelId).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Provider).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Usage.PromptTokens).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Usage.CompletionTokens).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Usage.CachedTokens).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.CostMicros).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Usage.Estimated).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Streamed).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Status).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.LatencyMs).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.TimeToFirstByteMs).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        p.Add(new() { Value = batch.Select(r => r.At).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        p.Add(new() { Value = batch.Select(r => r.ProviderCostMicros).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        p.Add(new() { Value = batch.Select(r => r.Byok).ToArray() });
        p.Add(new() { Value = batch.Select(r => r.Error?.Code).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        p.Add(new() { Value = batch.Select(r => r.Error?.Message).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        p.Add(new() { Value = batch.Select(r => r.MemberId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
        var keys = new List<(Guid, long)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) keys.Add((reader.GetGuid(0), reader.GetInt64(1)));
        return keys;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "PostgreSQL refused a batch of {Count} usage records ({SqlState}); writing them one by one")]
    private partial void LogBatchRefused(string sqlState, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Usage record {RequestId} of user {UserId} refused for good ({SqlState}); set aside in usage_dead_letters, not charged")]
    private partial void LogDeadLettered(Exception ex, string requestId, Guid userId, string sqlState);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Usage record {RequestId} of user {UserId}, key {KeyId}, cost {CostMicros} micro-USD could not be set aside either; not charged, only logged")]
    private partial void LogDeadLetterRefused(Exception ex, string requestId, Guid userId, Guid keyId, long costMicros);

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage writer drained at shutdown; {Pending} records left unwritten")]
    private partial void LogDrained(long pending);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write {Count} usage records; retrying in {DelayMs} ms")]
    private partial void LogFlushFailed(Exception ex, int count, double delayMs);
}
