using System.Collections.Concurrent;
using System.Diagnostics;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace AiGate.Web.Features.Credits;

/// <summary>
/// Usage checkpoints of open streams (RELIABILITY F7): a stream's usage row is written when it ends, so an instance
/// killed mid-stream (kill -9, a lost machine) would leave its open streams unbilled. Each stream records what it has
/// produced so far every <see cref="CreditsOptions.CheckpointSeconds"/> (on its own relay loop, where the count is
/// cheap and single-threaded); this service writes the changed ones to <c>stream_checkpoints</c> in one statement
/// on the same period, and sweeps: a checkpoint whose lease has expired belongs to a dead instance, and
/// <see cref="UsageWriter.ChargeOrphanedCheckpointsAsync"/> turns it into that stream's usage row and charge.
/// Under-billing is bounded by two periods of output per stream; nothing is ever charged twice, since the usage row
/// and its ledger entry are unique per request and the normal write deletes the checkpoint in the same statement.
/// </summary>
public sealed partial class StreamCheckpoints(NpgsqlDataSource dataSource, UsageWriter writer, IOptions<CreditsOptions> options,
    TimeProvider clock, ILogger<StreamCheckpoints> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<string, OpenStream> _open = new();
    private readonly long _interval = (long)(options.Value.CheckpointSeconds * (double)Stopwatch.Frequency);

    /// <summary>Starts checkpointing a metered stream; null when metering is off.</summary>
    public OpenStream? Open(string requestId, Reservation reservation, KeyIdentity key, ResolvedModel model)
    {
        if (ReferenceEquals(reservation, Reservation.Unmetered) || model.Pricing is not { } pricing) return null;
        var stream = new OpenStream(requestId, key.OwnerId, key.KeyId, reservation.LeaseId, model.Id, pricing, clock.GetUtcNow(),
            Stopwatch.GetTimestamp() + _interval, _interval) { MemberId = key.SpendMember };
        _open[requestId] = stream;
        return stream;
    }

    /// <summary>The stream ended; its usage record (queued by the caller) deletes any checkpoint row it left.</summary>
    public void Close(OpenStream? stream)
    {
        if (stream is not null) _open.TryRemove(new KeyValuePair<string, OpenStream>(stream.RequestId, stream));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.CheckpointSeconds));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await WriteAsync(stoppingToken);
                await SweepAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    /// <summary>Upserts the streams whose usage changed since the last write (one statement for all of them).</summary>
    internal async Task WriteAsync(CancellationToken ct)
    {
        var changed = new List<(OpenStream Stream, OpenStream.Snapshot Snapshot)>();
        foreach (var stream in _open.Values)
            if (stream.TakeIfChanged() is { } snapshot) changed.Add((stream, snapshot));
        if (changed.Count == 0) return;
        try
        {
            // A stream that ended while this ran has its usage row already: no checkpoint is (re)written for it.
            await using var command = dataSource.CreateCommand("""
                insert into stream_checkpoints (request_id, user_id, key_id, lease_id, model_id, provider, prompt_tokens, completion_tokens,
                                                cached_tokens, cost_micros, started_at, provider_cost_micros, byok, member_id, updated_at)
                select t.*, now() from unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::int8[], $8::int8[],
                                              $9::int8[], $10::int8[], $11::timestamptz[], $12::int8[], $13::bool[], $14::uuid[])
                    as t(request_id, user_id, key_id, lease_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens, cost_micros,
                         started_at, provider_cost_micros, byok, member_id)
                where not exists (select 1 from usage_events u where u.request_id = t.request_id)
                on conflict (request_id) do update set provider = excluded.provider, prompt_tokens = excluded.prompt_tokens,
                    completion_tokens = excluded.completion_tokens, cached_tokens = excluded.cached_tokens,
                    cost_micros = excluded.cost_micros, provider_cost_micros = excluded.provider_cost_micros, byok = excluded.byok,
                    updated_at = excluded.updated_at
                """);
            var p = command.Parameters;
            p.Add(new() { Value = changed.Select(c => c.Stream.RequestId).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.UserId).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.KeyId).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.LeaseId).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.ModelId).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.Provider).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Snapshot.Usage.PromptTokens).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Snapshot.Usage.CompletionTokens).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Snapshot.Usage.CachedTokens).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Snapshot.CostMicros).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.StartedAt).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            p.Add(new() { Value = changed.Select(c => c.Snapshot.ProviderCostMicros).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.Byok).ToArray() });
            p.Add(new() { Value = changed.Select(c => c.Stream.MemberId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid });
            await command.ExecuteNonQueryAsync(ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            // The next period writes them again (the snapshots are marked changed once more).
            foreach (var (stream, _) in changed) stream.MarkChanged();
            LogWriteFailed(ex, changed.Count);
        }
    }

    private async Task SweepAsync(CancellationToken ct)
    {
        try
        {
            if (await writer.ChargeOrphanedCheckpointsAsync(ct) is > 0 and var keys) LogCharged(keys);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogSweepFailed(ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write {Count} stream checkpoints; retrying next period")]
    private partial void LogWriteFailed(Exception ex, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not sweep the stream checkpoints of dead instances")]
    private partial void LogSweepFailed(Exception ex);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Charged streams cut off by a dead instance from their last checkpoints ({Keys} keys)")]
    private partial void LogCharged(int keys);
}

/// <summary>One metered stream being relayed: its identity and the latest usage its relay loop recorded.</summary>
public sealed class OpenStream
{
    private ModelPricing _pricing;
    private readonly long _interval;
    private long _nextDue;
    private Snapshot? _latest;
    private int _changed;

    internal OpenStream(string requestId, Guid userId, Guid keyId, Guid leaseId, string modelId, ModelPricing pricing, DateTimeOffset startedAt,
        long firstDue, long interval)
    {
        RequestId = requestId;
        UserId = userId;
        KeyId = keyId;
        LeaseId = leaseId;
        ModelId = modelId;
        _pricing = pricing;
        StartedAt = startedAt;
        _nextDue = firstDue;
        _interval = interval;
    }

    public string RequestId { get; }
    public Guid UserId { get; }
    public Guid KeyId { get; }
    public Guid LeaseId { get; }
    /// <summary>The member whose monthly spend the stream counts (<see cref="KeyIdentity.SpendMember"/>).</summary>
    public Guid? MemberId { get; init; }
    public string ModelId { get; }
    public DateTimeOffset StartedAt { get; }
    /// <summary>The provider serving the stream, once routed.</summary>
    public string Provider { get; set; } = "";
    /// <summary>The stream runs on the user's own key (BYOK), see <see cref="Routed"/>.</summary>
    public bool Byok { get; private set; }

    /// <summary>Once routed, before the first recording: who serves the stream, and what it is billed at (the BYOK fee, or the model's price).</summary>
    public void Routed(string provider, ModelPricing pricing, bool byok)
    {
        Provider = provider;
        _pricing = pricing;
        Byok = byok;
    }

    /// <summary>True when a period has passed since the last recording: the relay loop then counts and records.</summary>
    public bool Due => Stopwatch.GetTimestamp() >= Volatile.Read(ref _nextDue);

    /// <summary>Records what the stream would be billed if it ended now (null: nothing produced yet).</summary>
    public void Record(TokenUsage? usage)
    {
        Volatile.Write(ref _nextDue, Stopwatch.GetTimestamp() + _interval);
        if (usage is not { } u) return;
        Volatile.Write(ref _latest, new Snapshot(u, _pricing.CostMicros(u), Byok ? 0 : _pricing.ProviderCostMicros(u)));
        Volatile.Write(ref _changed, 1);
    }

    internal Snapshot? TakeIfChanged() => Interlocked.Exchange(ref _changed, 0) == 1 ? Volatile.Read(ref _latest) : null;

    internal void MarkChanged() => Volatile.Write(ref _changed, 1);

    internal sealed record Snapshot(TokenUsage Usage, long CostMicros, long ProviderCostMicros);
}
