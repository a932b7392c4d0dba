using System.Collections.Concurrent;
using AiGate.Web.Features.Keys;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Credits;

public enum ReserveOutcome { Reserved, InsufficientCredits, KeyLimitReached, Unavailable }

/// <summary>Credit set aside for one request until it settles. Settle or release it exactly once.</summary>
public sealed class Reservation
{
    /// <summary>The stand-in when metering is off for a benchmark: nothing held, nothing charged.</summary>
    public static readonly Reservation Unmetered = new(null!, new CreditLeases.UserLease(Guid.Empty), Guid.Empty, 0);

    internal Reservation(CreditLeases owner, CreditLeases.UserLease lease, Guid keyId, long amountMicros)
    {
        Owner = owner;
        Lease = lease;
        KeyId = keyId;
        AmountMicros = amountMicros;
    }

    internal CreditLeases Owner { get; }
    internal CreditLeases.UserLease Lease { get; }
    public Guid UserId => Lease.UserId;
    public Guid LeaseId => Lease.Id;
    public Guid KeyId { get; }
    public long AmountMicros { get; }
    internal int Done;
}

/// <summary>
/// Reserve-then-settle without a database round trip per request (DESIGN rule 1, issue #5). Each
/// instance leases a slice of a user's balance with one atomic conditional update (it moves credit
/// from available to held, so the sum of all instances' leases can never exceed the balance), then
/// reserves each request's worst-case cost from that slice in memory and settles it to the actual
/// cost. Spend reaches the database in batches (<see cref="UsageWriter"/>), which shrink the lease
/// as they debit the balance. Idle slices go back after a few seconds, at once when another
/// instance ran short for the same user, and at shutdown; leases of a dead instance expire and any
/// instance's sweeper returns them.
/// What a crash can lose: the spend of requests settled but not yet flushed (at most one flush
/// interval, 200 ms): revenue we lose, never a double charge and never a negative balance.
/// </summary>
public sealed partial class CreditLeases : BackgroundService
{
    private static readonly TimeSpan IdleReturn = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<Guid, UserLease> _leases = new();
    private readonly ConcurrentDictionary<Guid, long> _keyPending = new();
    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _clock;
    private readonly CreditsOptions _options;
    private readonly ILogger<CreditLeases> _logger;
    private long _lastHeartbeatTicks;

    public CreditLeases(NpgsqlDataSource dataSource, TimeProvider clock, IOptions<CreditsOptions> options, CacheNotifications notifications,
        ILogger<CreditLeases> logger)
    {
        _dataSource = dataSource;
        _clock = clock;
        _options = options.Value;
        _logger = logger;
        _lastHeartbeatTicks = clock.GetUtcNow().UtcTicks;
        notifications.Subscribe(OnNotice);
    }

    /// <summary>This process's name in <c>credit_leases</c>.</summary>
    public string InstanceId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    public async ValueTask<(ReserveOutcome Outcome, Reservation? Reservation)> ReserveAsync(KeyIdentity key, long amountMicros, CancellationToken ct)
    {
        if (key.CreditLimitMicros is { } limit && key.SpentMicros + _keyPending.GetValueOrDefault(key.KeyId) + amountMicros > limit)
            return (ReserveOutcome.KeyLimitReached, null);
        if (!LeasesValid()) return (ReserveOutcome.Unavailable, null);

        var lease = _leases.GetOrAdd(key.OwnerId, static id => new UserLease(id));
        if (TryTake(lease, key.KeyId, amountMicros) is { } fast) return (ReserveOutcome.Reserved, fast);

        await lease.Gate.WaitAsync(ct);
        try
        {
            if (TryTake(lease, key.KeyId, amountMicros) is { } again) return (ReserveOutcome.Reserved, again);
            long need;
            lock (lease) need = amountMicros - lease.Available;
            long granted;
            try
            {
                granted = await AcquireAsync(lease, need, ct);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
            {
                LogLeaseFailed(ex, key.OwnerId);
                return (ReserveOutcome.Unavailable, null);   // fail closed: no credit, no upstream call
            }
            if (granted > 0)
            {
                lock (lease)
                {
                    lease.Available += granted;
                    lease.Held += granted;
                }
            }
            else
            {
                _ = AskOthersToReturnAsync(key.OwnerId);
            }
            return TryTake(lease, key.KeyId, amountMicros) is { } reserved
                ? (ReserveOutcome.Reserved, reserved)
                : (ReserveOutcome.InsufficientCredits, null);
        }
        finally
        {
            lease.Gate.Release();
        }
    }

    /// <summary>Requests of this user in flight on this instance (a refusal because of them deserves a Retry-After).</summary>
    public int InFlight(Guid userId) => _leases.TryGetValue(userId, out var lease) ? Volatile.Read(ref lease.InFlight) : 0;

    /// <summary>The request cost <paramref name="costMicros"/> (it may exceed the reservation slightly: the excess is debt the lease absorbs).</summary>
    public void Settle(Reservation reservation, long costMicros)
    {
        if (Interlocked.Exchange(ref reservation.Done, 1) == 1) return;
        var lease = reservation.Lease;
        lock (lease)
        {
            lease.Available += reservation.AmountMicros - costMicros;
            lease.Unflushed += costMicros;
            lease.InFlight--;
            lease.LastUsedTicks = _clock.GetUtcNow().UtcTicks;
        }
        _keyPending.AddOrUpdate(reservation.KeyId, costMicros - reservation.AmountMicros, (_, v) => v + costMicros - reservation.AmountMicros);
    }

    /// <summary>Nothing was spent: the whole reservation goes back.</summary>
    public void Release(Reservation reservation) => Settle(reservation, 0);

    /// <summary>The usage writer committed <paramref name="costMicros"/> of this lease's spend to the database.</summary>
    internal void OnFlushed(Guid userId, Guid keyId, long costMicros)
    {
        if (_leases.TryGetValue(userId, out var lease))
            lock (lease)
            {
                lease.Held = Math.Max(0, lease.Held - costMicros);
                lease.Unflushed -= costMicros;
            }
        _keyPending.AddOrUpdate(keyId, -costMicros, (_, v) => v - costMicros);
    }

    private Reservation? TryTake(UserLease lease, Guid keyId, long amount)
    {
        lock (lease)
        {
            if (lease.Available < amount) return null;
            lease.Available -= amount;
            lease.InFlight++;
            lease.LastUsedTicks = _clock.GetUtcNow().UtcTicks;
        }
        _keyPending.AddOrUpdate(keyId, amount, (_, v) => v + amount);
        return new Reservation(this, lease, keyId, amount);
    }

    /// <summary>
    /// One statement: take min(available, max(need, min(cap, available / 4))) from the user's
    /// available balance into this instance's lease, or nothing when even <paramref name="need"/>
    /// is not available. The row lock makes concurrent instances queue, never overspend.
    /// </summary>
    private async Task<long> AcquireAsync(UserLease lease, long need, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("""
            with g as (
                select least(balance_micros - held_micros, greatest($2, least($3, (balance_micros - held_micros) / 4))) as amount
                from credit_accounts where user_id = $1 for update),
            upd as (
                update credit_accounts a set held_micros = a.held_micros + g.amount, updated_at = now()
                from g where a.user_id = $1 and g.amount >= $2 and g.amount > 0
                returning g.amount),
            lease as (
                insert into credit_leases (id, user_id, instance_id, held_micros, expires_at, created_at)
                select $4, $1, $5, amount, now() + make_interval(secs => $6), now() from upd
                on conflict (id) do update set held_micros = credit_leases.held_micros + excluded.held_micros, expires_at = excluded.expires_at)
            select amount from upd
            """);
        command.Parameters.Add(new() { Value = lease.UserId });
        command.Parameters.Add(new() { Value = Math.Max(1, need) });
        command.Parameters.Add(new() { Value = _options.MaxLeaseMicros });
        command.Parameters.Add(new() { Value = lease.Id });
        command.Parameters.Add(new() { Value = InstanceId });
        command.Parameters.Add(new() { Value = (double)_options.LeaseTtlSeconds });
        return await command.ExecuteScalarAsync(ct) is long granted ? granted : 0;
    }

    private async Task AskOthersToReturnAsync(Guid userId)
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync();
            await CacheNotifications.PublishAsync(connection, null, $"lease-return:{userId}", CancellationToken.None);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogLeaseFailed(ex, userId);
        }
    }

    private void OnNotice(string? payload)
    {
        if (payload is not null && payload.StartsWith("lease-return:", StringComparison.Ordinal) &&
            Guid.TryParse(payload.AsSpan(13), out var userId) && _leases.TryGetValue(userId, out var lease))
            lease.ReturnRequested = true;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var tick = 0;
        // Renew well inside the validity window (¾ of the TTL): every 10 s, or a third of the TTL when that
        // is shorter. A fixed 10 s left short TTLs (tests use 10 s) with seconds of 503s after start and
        // between renewals.
        var heartbeatEvery = Math.Clamp(_options.LeaseTtlSeconds / 3, 1, 10);
        try
        {
            // At once, not a period after start: the validity clock runs from construction, and a slow start
            // (a loaded machine) could otherwise refuse the first requests with billing_unavailable.
            await HeartbeatAndSweepAsync(stoppingToken);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                tick++;
                await ReturnIdleAsync(all: false, stoppingToken);
                if (tick % heartbeatEvery == 0) await HeartbeatAndSweepAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await ReturnIdleAsync(all: true, cancellationToken);
    }

    /// <summary>Gives unreserved credit back to the balance: idle slices, slices others asked for, or everything at shutdown.</summary>
    internal async Task ReturnIdleAsync(bool all, CancellationToken ct)
    {
        var now = _clock.GetUtcNow().UtcTicks;
        foreach (var lease in _leases.Values)
        {
            long amount;
            lock (lease)
            {
                var idle = now - lease.LastUsedTicks > IdleReturn.Ticks;
                if (lease.Available <= 0 || !(all || idle || lease.ReturnRequested)) continue;
                amount = lease.Available;
                lease.Available = 0;
                lease.Held -= amount;
                lease.ReturnRequested = false;
            }
            try
            {
                await using var batch = _dataSource.CreateBatch();
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    "update credit_accounts set held_micros = greatest(held_micros - $2, 0), updated_at = now() where user_id = $1")
                    { Parameters = { new() { Value = lease.UserId }, new() { Value = amount } } });
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    "update credit_leases set held_micros = greatest(held_micros - $2, 0) where id = $1")
                    { Parameters = { new() { Value = lease.Id }, new() { Value = amount } } });
                await batch.ExecuteNonQueryAsync(ct);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or OperationCanceledException)
            {
                lock (lease)
                {
                    lease.Available += amount;   // still ours: try again later
                    lease.Held += amount;
                }
                LogReturnFailed(ex, lease.UserId);
            }
        }
    }

    /// <summary>Keeps this instance's leases alive and returns the leases of instances that stopped renewing theirs.</summary>
    internal async Task HeartbeatAndSweepAsync(CancellationToken ct)
    {
        try
        {
            await using var batch = _dataSource.CreateBatch();
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                "update credit_leases set expires_at = now() + make_interval(secs => $2) where instance_id = $1")
                { Parameters = { new() { Value = InstanceId }, new() { Value = (double)_options.LeaseTtlSeconds } } });
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                with dead as (delete from credit_leases where expires_at < now() returning user_id, held_micros)
                update credit_accounts a set held_micros = greatest(a.held_micros - d.total, 0), updated_at = now()
                from (select user_id, sum(held_micros) as total from dead group by user_id) d where a.user_id = d.user_id
                """));
            await batch.ExecuteNonQueryAsync(ct);
            Interlocked.Exchange(ref _lastHeartbeatTicks, _clock.GetUtcNow().UtcTicks);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogHeartbeatFailed(ex);
        }
    }

    /// <summary>
    /// A lease whose renewal failed for most of its lifetime may already have been swept by another
    /// instance: stop spending from any lease until the database answers again.
    /// </summary>
    private bool LeasesValid() =>
        _clock.GetUtcNow().UtcTicks - Interlocked.Read(ref _lastHeartbeatTicks) < TimeSpan.FromSeconds(_options.LeaseTtlSeconds * 0.75).Ticks;

    internal sealed class UserLease(Guid userId)
    {
        public Guid Id { get; } = Guid.CreateVersion7();
        public Guid UserId { get; } = userId;
        public SemaphoreSlim Gate { get; } = new(1, 1);
        /// <summary>Credit of this lease not reserved by any request; negative after an overshoot.</summary>
        public long Available;
        /// <summary>What the database holds for this lease (minus spend already written).</summary>
        public long Held;
        public long Unflushed;
        public int InFlight;
        public long LastUsedTicks;
        public volatile bool ReturnRequested;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not lease credit for user {UserId}")]
    private partial void LogLeaseFailed(Exception ex, Guid userId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not return leased credit of user {UserId}; retrying")]
    private partial void LogReturnFailed(Exception ex, Guid userId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not renew credit leases")]
    private partial void LogHeartbeatFailed(Exception ex);
}
