using System.Threading.Channels;
using AiGate.Web.Features.Models;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace AiGate.Web.Features.Credits;

/// <summary>One metered call, as it leaves the request path.</summary>
public sealed record UsageRecord(
    string RequestId, Guid UserId, Guid KeyId, Guid LeaseId, string ModelId, string Provider, TokenUsage Usage, long CostMicros,
    bool Streamed, int Status, int LatencyMs, int? TimeToFirstByteMs, DateTimeOffset At);

/// <summary>
/// Writes usage off the request path: requests put a <see cref="UsageRecord"/> on a bounded channel;
/// every <see cref="CreditsOptions.FlushIntervalMs"/> (or 1,000 records) one SQL statement inserts
/// the usage rows and their ledger entries, debits the balances, shrinks the leases and adds to the
/// keys' spend, all in one transaction. The request id is unique in both tables, so a batch retried
/// after an unclear commit lands once. A failing database is retried until it answers; graceful
/// shutdown drains the channel first.
/// </summary>
public sealed partial class UsageWriter(NpgsqlDataSource dataSource, CreditLeases leases, IOptions<CreditsOptions> options, ILogger<UsageWriter> logger)
    : BackgroundService
{
    private const int MaxBatch = 1000;
    private readonly Channel<UsageRecord> _channel = Channel.CreateBounded<UsageRecord>(
        new BoundedChannelOptions(100_000) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private long _pending;

    /// <summary>Records not yet committed (for tests and shutdown).</summary>
    public long Pending => Interlocked.Read(ref _pending);

    public ValueTask EnqueueAsync(UsageRecord record, CancellationToken ct)
    {
        Interlocked.Increment(ref _pending);
        if (_channel.Writer.TryWrite(record)) return ValueTask.CompletedTask;
        return _channel.Writer.WriteAsync(record, ct);   // backpressure only when 100,000 records wait
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<UsageRecord>(MaxBatch);
        var interval = TimeSpan.FromMilliseconds(options.Value.FlushIntervalMs);
        try
        {
            while (await _channel.Reader.WaitToReadAsync(stoppingToken))
            {
                await Task.Delay(interval, stoppingToken);
                while (batch.Count < MaxBatch && _channel.Reader.TryRead(out var record)) batch.Add(record);
                await FlushWithRetryAsync(batch, stoppingToken);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }

        // Shutdown: whatever is queued is written before the process ends.
        _channel.Writer.TryComplete();
        while (_channel.Reader.TryRead(out var record))
        {
            batch.Add(record);
            if (batch.Count == MaxBatch)
            {
                await FlushWithRetryAsync(batch, CancellationToken.None, attempts: 5);
                batch.Clear();
            }
        }
        if (batch.Count > 0) await FlushWithRetryAsync(batch, CancellationToken.None, attempts: 5);
    }

    private async Task FlushWithRetryAsync(List<UsageRecord> batch, CancellationToken ct, int attempts = int.MaxValue)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await FlushAsync(batch, ct);
                foreach (var record in batch) leases.OnFlushed(record.UserId, record.KeyId, record.CostMicros);
                Interlocked.Add(ref _pending, -batch.Count);
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException && attempt < attempts)
            {
                LogFlushFailed(ex, batch.Count, delay.TotalMilliseconds);
                try { await Task.Delay(delay, ct); } catch (OperationCanceledException) { ct = CancellationToken.None; }
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    private async Task FlushAsync(List<UsageRecord> batch, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("""
            with input as (
                select * from unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int8[], $8::int8[],
                                     $9::int8[], $10::int8[], $11::bool[], $12::bool[], $13::int4[], $14::int4[], $15::int4[], $16::timestamptz[])
                    as t(request_id, user_id, key_id, lease_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                         cost_micros, estimated, streamed, status, latency_ms, ttfb_ms, created_at)),
            usage as (
                insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                          cost_micros, estimated, streamed, status, latency_ms, time_to_first_byte_ms, created_at)
                select request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                       cost_micros, estimated, streamed, status, latency_ms, ttfb_ms, created_at from input
                on conflict (request_id) do nothing
                returning request_id),
            fresh as (select input.* from input join usage using (request_id)),
            ledger as (
                insert into ledger_entries (user_id, kind, amount_micros, reference, idempotency_key, created_at)
                select user_id, 'usage', -cost_micros, request_id, 'usage:' || request_id, created_at from fresh where cost_micros > 0
                on conflict (idempotency_key) do nothing),
            accounts as (
                update credit_accounts a set balance_micros = a.balance_micros - s.total,
                                             held_micros = greatest(a.held_micros - s.total, 0), updated_at = now()
                from (select user_id, sum(cost_micros) as total from fresh group by user_id) s where a.user_id = s.user_id),
            lease_rows as (
                update credit_leases l set held_micros = greatest(l.held_micros - s.total, 0)
                from (select lease_id, sum(cost_micros) as total from fresh group by lease_id) s where l.id = s.lease_id),
            keys as (
                update api_keys k set spent_micros = k.spent_micros + s.total
                from (select key_id, sum(cost_micros) as total from fresh group by key_id) s where k.id = s.key_id)
            select count(*) from fresh
            """);
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
        await command.ExecuteScalarAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write {Count} usage records; retrying in {DelayMs} ms")]
    private partial void LogFlushFailed(Exception ex, int count, double delayMs);
}
