using System.Collections.Concurrent;
using AiGate.Web.Data;
using AiGate.Web.Features.Keys;
using AiGate.Web.Infrastructure;
using AiGate.Web.Infrastructure.Telemetry;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Credits;

public enum ReserveOutcome { Reserved, InsufficientCredits, KeyLimitReached, Unavailable, MemberBudgetExceeded }

/// <summary>Credit set aside for one request until it settles. Settle or release it exactly once.</summary>
public sealed class Reservation
{
    /// <summary>The stand-in when metering is off for a benchmark: nothing held, nothing charged.</summary>
    public static readonly Reservation Unmetered = new(null!, new CreditLeases.UserLease(Guid.Empty, null), Guid.Empty, new CreditLeases.KeySpend(), 0);

    internal Reservation(CreditLeases owner, CreditLeases.UserLease lease, Guid keyId, CreditLeases.KeySpend keySpend, long amountMicros)
    {
        Owner = owner;
        Lease = lease;
        KeyId = keyId;
        KeySpend = keySpend;
        AmountMicros = amountMicros;
    }

    internal CreditLeases Owner { get; }
    internal CreditLeases.UserLease Lease { get; }
    public Guid UserId => Lease.UserId;
    public Guid LeaseId => Lease.Id;
    /// <summary>The member whose monthly budget the lease also holds (null: the organization's balance only).</summary>
    public Guid? LeaseMemberId => Lease.MemberId;
    public Guid KeyId { get; }
    internal CreditLeases.KeySpend KeySpend { get; }
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
/// Lease validity runs on the monotonic clock (and on the wall clock too, whichever says older, so
/// neither a clock step nor a suspended VM extends it); a heartbeat that finds one of this instance's
/// lease rows gone (swept while this process was frozen or cut off) drops that lease from memory
/// before the instance spends again.
/// A top-up waits for PostgreSQL no longer than <see cref="DatabaseDeadline"/> allows (RELIABILITY F10: a hung database
/// gets the call a 503 within 2 s). A top-up whose statement was sent but not answered in time may still commit, so its
/// lease is retired (<see cref="Retire"/>) rather than trusted: the organization spends from a fresh lease, and the old
/// one's row goes back to the balance whole once its calls have settled and their spend is written.
/// Member budgets (issue 17): a key whose creator has a monthly budget in its organization spends from a lease of its
/// own keyed by (organization, member), whose acquisition takes the slice from the organization's balance and from the
/// member's remaining budget (<c>member_budgets</c>: budget − spent − held for the current UTC month) in one transaction,
/// so the member cannot overspend their budget either, on any number of instances. Returns, the sweep and the usage
/// writer move the member's held and spent with the organization's.
/// </summary>
public sealed partial class CreditLeases : BackgroundService
{
    private static readonly TimeSpan IdleReturn = TimeSpan.FromSeconds(5);
    /// <summary>Leases by (organization, member with a budget); <see cref="Guid.Empty"/> as the member: the organization's own.</summary>
    private readonly ConcurrentDictionary<(Guid Org, Guid Member), UserLease> _leases = new();
    private readonly ConcurrentDictionary<Guid, KeySpend> _keySpend = new();
    /// <summary>Leases whose last top-up may or may not have committed, by id, until their rows are released.</summary>
    private readonly ConcurrentDictionary<Guid, UserLease> _retired = new();
    private readonly NpgsqlDataSource _dataSource;
    private readonly DatabaseDeadline _database;
    private readonly TimeProvider _clock;
    private readonly CreditsOptions _options;
    private readonly ILogger<CreditLeases> _logger;
    private long _lastHeartbeatTimestamp;
    private long _lastHeartbeatWallTicks;

    public CreditLeases(NpgsqlDataSource dataSource, TimeProvider clock, IOptions<CreditsOptions> options, CacheNotifications notifications,
        DatabaseDeadline database, ILogger<CreditLeases> logger)
    {
        _dataSource = dataSource;
        _database = database;
        _clock = clock;
        _options = options.Value;
        _logger = logger;
        _lastHeartbeatTimestamp = clock.GetTimestamp();
        _lastHeartbeatWallTicks = clock.GetUtcNow().UtcTicks;
        notifications.Subscribe(OnNotice);
    }

    /// <summary>This process's name in <c>credit_leases</c>.</summary>
    public string InstanceId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    public async ValueTask<(ReserveOutcome Outcome, Reservation? Reservation)> ReserveAsync(KeyIdentity key, long amountMicros, CancellationToken ct)
    {
        var spend = _keySpend.GetOrAdd(key.KeyId, static _ => new KeySpend());
        // The key's spend as last read from the database (at load, or returned by a flush of ours), never
        // lowered, plus what this instance reserved and settled but has not written yet.
        spend.RaiseSpent(key.SpentMicros);
        if (key.CreditLimitMicros is { } limit && Volatile.Read(ref spend.Spent) + Volatile.Read(ref spend.Pending) + amountMicros > limit)
            return (ReserveOutcome.KeyLimitReached, null);
        if (!LeasesValid()) return (ReserveOutcome.Unavailable, null);

        var member = key.MemberBudgetMicros is not null ? key.CreatedBy : Guid.Empty;
        var lease = CurrentLease(key.OwnerId, member);
        if (TryTake(lease, key.KeyId, spend, amountMicros) is { } fast) return (ReserveOutcome.Reserved, fast);

        // Dropped or retired while we waited (its row was swept, or its top-up missed the deadline): start over on the
        // fresh lease, behind that lease's gate, so the gate released below is the one taken.
        await lease.Gate.WaitAsync(ct);
        while (lease.Dropped)
        {
            lease.Gate.Release();
            lease = CurrentLease(key.OwnerId, member);
            await lease.Gate.WaitAsync(ct);
        }
        try
        {
            if (TryTake(lease, key.KeyId, spend, amountMicros) is { } again) return (ReserveOutcome.Reserved, again);
            long need;
            lock (lease) need = amountMicros - lease.Available;
            if (_database.Down)
            {
                CountAcquisition("failed");
                return (ReserveOutcome.Unavailable, null);   // fail closed at once: the database just missed a deadline
            }
            long granted;
            bool budgetShort;
            var topUp = new TopUp(lease, need);
            try
            {
                // The request's own abort does not stop a top-up (it would retire the lease for nothing); the deadline does.
                (granted, budgetShort) = await _database.RunAsync(static (s, token) => s.TopUp.Running = s.Self.AcquireAsync(s.TopUp, token),
                    (Self: this, TopUp: topUp), CancellationToken.None);
            }
            catch (Exception ex) when (ex is DatabaseUnavailableException or NpgsqlException)
            {
                if (topUp.MayCommit) Retire(lease);
                LogLeaseFailed(ex, key.OwnerId);
                CountAcquisition("failed");
                return (ReserveOutcome.Unavailable, null);   // fail closed: no credit, no upstream call
            }
            CountAcquisition(granted > 0 ? "granted" : "empty");
            if (granted > 0)
            {
                lock (lease)
                {
                    lease.Available += granted;
                    lease.Held += granted;
                    lease.HasRow = true;
                    lease.AcquiredTimestamp = _clock.GetTimestamp();
                }
            }
            else
            {
                _ = AskOthersToReturnAsync(key.OwnerId);
            }
            if (TryTake(lease, key.KeyId, spend, amountMicros) is { } reserved) return (ReserveOutcome.Reserved, reserved);
            return (budgetShort ? ReserveOutcome.MemberBudgetExceeded : ReserveOutcome.InsufficientCredits, null);
        }
        finally
        {
            lease.Gate.Release();
        }
    }

    private static void CountAcquisition(string outcome)
    {
        if (AiGateTelemetry.LeaseAcquisitions.Enabled)
            AiGateTelemetry.LeaseAcquisitions.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
    }

    private UserLease CurrentLease(Guid orgId, Guid member)
    {
        while (true)
        {
            var lease = _leases.GetOrAdd((orgId, member), static id => new UserLease(id.Org, id.Member == Guid.Empty ? null : id.Member));
            if (!lease.Dropped) return lease;
            _leases.TryRemove(new KeyValuePair<(Guid, Guid), UserLease>((orgId, member), lease));
        }
    }

    /// <summary>Requests of this organization's own lease in flight on this instance.</summary>
    public int InFlight(Guid userId) => _leases.TryGetValue((userId, Guid.Empty), out var lease) ? Volatile.Read(ref lease.InFlight) : 0;

    /// <summary>Requests of this key's lease in flight on this instance (a refusal because of them deserves a Retry-After).</summary>
    public int InFlight(KeyIdentity key) =>
        _leases.TryGetValue((key.OwnerId, key.MemberBudgetMicros is not null ? key.CreatedBy : Guid.Empty), out var lease)
            ? Volatile.Read(ref lease.InFlight)
            : 0;

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
            lease.LastUsedTimestamp = _clock.GetTimestamp();
        }
        Interlocked.Add(ref reservation.KeySpend.Pending, costMicros - reservation.AmountMicros);
    }

    /// <summary>Nothing was spent: the whole reservation goes back.</summary>
    public void Release(Reservation reservation) => Settle(reservation, 0);

    /// <summary>
    /// The lease the spend came from, in the map or retired; null when it was dropped since (its successor, a new id,
    /// must not shrink by it).
    /// </summary>
    private UserLease? FindLease(Guid userId, Guid? leaseMember, Guid leaseId) =>
        _leases.TryGetValue((userId, leaseMember ?? Guid.Empty), out var lease) && lease.Id == leaseId ? lease
        : _retired.TryGetValue(leaseId, out var retired) ? retired
        : null;

    /// <summary>The usage writer committed <paramref name="costMicros"/> of this lease's spend to the database.</summary>
    internal void OnFlushed(Guid userId, Guid? leaseMember, Guid leaseId, Guid keyId, long costMicros)
    {
        if (FindLease(userId, leaseMember, leaseId) is { } lease)
            lock (lease)
            {
                lease.Held = Math.Max(0, lease.Held - costMicros);
                lease.Unflushed -= costMicros;
            }
        if (_keySpend.TryGetValue(keyId, out var spend)) Interlocked.Add(ref spend.Pending, -costMicros);
    }

    /// <summary>A flush returned the key's spend as committed, which includes other instances' flushed spend.</summary>
    internal void OnKeySpentRead(Guid keyId, long spentMicros)
    {
        if (_keySpend.TryGetValue(keyId, out var spend)) spend.RaiseSpent(spentMicros);
    }

    /// <summary>
    /// A settled record PostgreSQL refused for good (see <see cref="UsageWriter"/>): nothing was charged,
    /// so its cost goes back to the lease it was taken from and leaves the key's pending spend.
    /// </summary>
    internal void OnDeadLettered(Guid userId, Guid? leaseMember, Guid leaseId, Guid keyId, long costMicros)
    {
        if (FindLease(userId, leaseMember, leaseId) is { } lease)
            lock (lease)
            {
                lease.Available += costMicros;
                lease.Unflushed -= costMicros;
            }
        if (_keySpend.TryGetValue(keyId, out var spend)) Interlocked.Add(ref spend.Pending, -costMicros);
    }

    private Reservation? TryTake(UserLease lease, Guid keyId, KeySpend spend, long amount)
    {
        lock (lease)
        {
            if (lease.Dropped || lease.Available < amount) return null;
            lease.Available -= amount;
            lease.InFlight++;
            lease.LastUsedTimestamp = _clock.GetTimestamp();
        }
        Interlocked.Add(ref spend.Pending, amount);
        return new Reservation(this, lease, keyId, spend, amount);
    }

    /// <summary>One top-up of a lease, as far as its caller, who may stop waiting at the deadline, needs to know it.</summary>
    private sealed class TopUp(UserLease lease, long need)
    {
        public UserLease Lease { get; } = lease;
        public long Need { get; } = need;
        /// <summary>It got as far as a connection: from there on its statement may commit even if nobody waits for the answer.</summary>
        public volatile bool Opened;
        public Task<(long Granted, bool BudgetShort)>? Running;

        /// <summary>Unless it is over and never got as far as a connection, its statement may commit after the caller gave up.</summary>
        public bool MayCommit => Running is { } running && (!running.IsCompleted || Opened);
    }

    /// <summary>One top-up on a connection of its own.</summary>
    private async Task<(long Granted, bool BudgetShort)> AcquireAsync(TopUp topUp, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        topUp.Opened = true;
        return topUp.Lease.MemberId is null
            ? (await AcquireForOrganizationAsync(connection, topUp.Lease, topUp.Need, ct), false)
            : await AcquireForMemberAsync(connection, topUp.Lease, topUp.Need, ct);
    }

    /// <summary>
    /// One statement: take min(available, max(need, min(cap, available / 4))) from the user's
    /// available balance into this instance's lease, or nothing when even <paramref name="need"/>
    /// is not available. The row lock makes concurrent instances queue, never overspend. This lease's row is locked
    /// first (<c>own</c>): the order in which the usage writer and returns lock a lease and then its account.
    /// </summary>
    private async Task<long> AcquireForOrganizationAsync(NpgsqlConnection connection, UserLease lease, long need, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("""
            with own as (select 1 from credit_leases where id = $4 for update),
            g as (
                select least(balance_micros - held_micros, greatest($2, least($3, (balance_micros - held_micros) / 4))) as amount
                from credit_accounts where user_id = $1 and (select count(*) from own) >= 0 for update),
            upd as (
                update credit_accounts a set held_micros = a.held_micros + g.amount, updated_at = now()
                from g where a.user_id = $1 and g.amount >= $2 and g.amount > 0
                returning g.amount),
            lease as (
                insert into credit_leases (id, user_id, instance_id, held_micros, expires_at, created_at)
                select $4, $1, $5, amount, now() + make_interval(secs => $6), now() from upd
                on conflict (id) do update set held_micros = credit_leases.held_micros + excluded.held_micros, expires_at = excluded.expires_at)
            select amount from upd
            """, connection);
        command.Parameters.Add(new() { Value = lease.UserId });
        command.Parameters.Add(new() { Value = Math.Max(1, need) });
        command.Parameters.Add(new() { Value = _options.MaxLeaseMicros });
        command.Parameters.Add(new() { Value = lease.Id });
        command.Parameters.Add(new() { Value = InstanceId });
        command.Parameters.Add(new() { Value = (double)_options.LeaseTtlSeconds });
        return await command.ExecuteScalarAsync(ct) is long granted ? granted : 0;
    }

    /// <summary>
    /// The same for a member with a monthly budget, in one transaction (one round trip): lock the lease's row and the
    /// organization's account, make sure the member's row counts the current UTC month of the app's clock (a new
    /// month starts spent again at 0), then take min(available, room, max(need, min(cap, min(available, room) / 4))), where
    /// room is the member's budget − spent − held, into the organization's held credit, the member's and this lease.
    /// BudgetShort: the member's remaining budget, not the organization's balance, is the tighter bound, so a request this
    /// lease cannot serve (nothing granted, or what was granted taken by concurrent requests) is refused for the budget.
    /// </summary>
    private async Task<(long Granted, bool BudgetShort)> AcquireForMemberAsync(NpgsqlConnection connection, UserLease lease, long need,
        CancellationToken ct)
    {
        var now = _clock.GetUtcNow().UtcDateTime;
        var month = new DateOnly(now.Year, now.Month, 1);
        await using var batch = new NpgsqlBatch(connection);   // one implicit transaction: all or nothing
        // Locks in the order every statement on leases takes them (this lease's row, then the account, then the member's
        // row: acquisitions, returns, the sweep and the usage writer), so two of them wait for each other, never deadlock.
        batch.BatchCommands.Add(new NpgsqlBatchCommand("select 1 from credit_leases where id = $1 for update")
            { Parameters = { new() { Value = lease.Id } } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("select 1 from credit_accounts where user_id = $1 for update")
            { Parameters = { new() { Value = lease.UserId } } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            insert into member_budgets (org_id, user_id, month, spent_micros, held_micros, updated_at) values ($1, $2, $3, 0, 0, now())
            on conflict (org_id, user_id) do update set month = excluded.month, spent_micros = 0, updated_at = now()
            where member_budgets.month < excluded.month
            """) { Parameters = { new() { Value = lease.UserId }, new() { Value = lease.MemberId!.Value }, new() { Value = month } } });
        batch.BatchCommands.Add(new NpgsqlBatchCommand("""
            with r as (
                select a.available,
                       -- No longer a member: nothing; a budget removed meanwhile: the balance is the only bound.
                       case when o.user_id is null then 0
                            when o.monthly_budget_micros is null then a.available
                            else o.monthly_budget_micros - b.spent_micros - b.held_micros end as room
                from (select balance_micros - held_micros as available from credit_accounts where user_id = $1) a
                cross join member_budgets b
                left join organization_members o on o.org_id = b.org_id and o.user_id = b.user_id
                where b.org_id = $1 and b.user_id = $2),
            g as (select least(available, room, greatest($3, least($4, least(available, room) / 4))) as amount, available, room from r),
            upd as (
                update credit_accounts a set held_micros = a.held_micros + g.amount, updated_at = now()
                from g where a.user_id = $1 and g.amount >= $3 and g.amount > 0
                returning g.amount),
            member as (
                update member_budgets b set held_micros = b.held_micros + upd.amount, updated_at = now()
                from upd where b.org_id = $1 and b.user_id = $2),
            lease as (
                insert into credit_leases (id, user_id, member_id, instance_id, held_micros, expires_at, created_at)
                select $5, $1, $2, $6, amount, now() + make_interval(secs => $7), now() from upd
                on conflict (id) do update set held_micros = credit_leases.held_micros + excluded.held_micros, expires_at = excluded.expires_at)
            select coalesce((select amount from upd), 0), coalesce((select room < available from g), false)
            """)
        {
            Parameters =
            {
                new() { Value = lease.UserId }, new() { Value = lease.MemberId!.Value }, new() { Value = Math.Max(1, need) },
                new() { Value = _options.MaxLeaseMicros }, new() { Value = lease.Id }, new() { Value = InstanceId },
                new() { Value = (double)_options.LeaseTtlSeconds },
            },
        });
        await using var reader = await batch.ExecuteReaderAsync(ct);
        do
        {
            if (reader.FieldCount == 2 && await reader.ReadAsync(ct)) return (reader.GetInt64(0), reader.GetBoolean(1));
        } while (await reader.NextResultAsync(ct));
        return (0, false);
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
        if (payload is null || !payload.StartsWith("lease-return:", StringComparison.Ordinal) || !Guid.TryParse(payload.AsSpan(13), out var orgId))
            return;
        // Every lease of the organization: its members' leases hold its balance too (and their own budgets).
        foreach (var (id, lease) in _leases)
            if (id.Org == orgId) lease.ReturnRequested = true;
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
                await ReleaseRetiredAsync(stoppingToken);
                if (tick % heartbeatEvery == 0) await HeartbeatAndSweepAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // On its own short deadline: the host's may be spent by the streams that drained first.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await ReturnIdleAsync(all: true, deadline.Token);
        await ReleaseRetiredAsync(deadline.Token);
    }

    /// <summary>Gives unreserved credit back to the balance: idle slices, slices others asked for, or everything at shutdown.</summary>
    internal async Task ReturnIdleAsync(bool all, CancellationToken ct)
    {
        foreach (var lease in _leases.Values)
        {
            long amount;
            lock (lease)
            {
                var idle = _clock.GetElapsedTime(lease.LastUsedTimestamp) > IdleReturn;
                if (lease.Dropped || lease.Available <= 0 || !(all || idle || lease.ReturnRequested)) continue;
                amount = lease.Available;
                lease.Available = 0;
                lease.Held -= amount;
                lease.ReturnRequested = false;
            }
            try
            {
                // Only while the lease row exists: a swept lease's credit already went back, and returning it
                // again would release credit another instance holds. A member's lease gives their budget back too. The CTEs
                // chain (lease row, account, member row) to lock in the order every statement on leases does.
                await using var command = _dataSource.CreateCommand("""
                    with l as (update credit_leases set held_micros = greatest(held_micros - $3, 0) where id = $2 returning id, member_id),
                    account as (
                        update credit_accounts set held_micros = greatest(held_micros - $3, 0), updated_at = now()
                        where user_id = $1 and exists (select 1 from l) returning user_id),
                    member as (
                        update member_budgets b set held_micros = greatest(b.held_micros - $3, 0), updated_at = now()
                        from l, account where b.org_id = $1 and b.user_id = l.member_id)
                    select count(*) from l
                    """);
                command.Parameters.Add(new() { Value = lease.UserId });
                command.Parameters.Add(new() { Value = lease.Id });
                command.Parameters.Add(new() { Value = amount });
                if (await command.ExecuteScalarAsync(ct) is 0L && lease.HasRow) Drop(lease);
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
            var started = _clock.GetTimestamp();
            var startedWall = _clock.GetUtcNow().UtcTicks;
            await using var batch = _dataSource.CreateBatch();
            // Only the rows of leases this process knows it holds: a retired lease's row that a late top-up wrote after
            // its release is nobody's, so it must expire and be swept, not live on.
            var known = new List<Guid>(_leases.Count + _retired.Count);
            foreach (var lease in _leases.Values)
                if (lease.HasRow) known.Add(lease.Id);
            foreach (var lease in _retired.Values)
                if (lease.HasRow) known.Add(lease.Id);
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                "update credit_leases set expires_at = now() + make_interval(secs => $2) where instance_id = $1 and id = any($3) returning id")
                { Parameters = { new() { Value = InstanceId }, new() { Value = (double)_options.LeaseTtlSeconds }, new() { Value = known.ToArray() } } });
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                "with dead as (delete from credit_leases where expires_at < now() returning user_id, member_id, held_micros),\n" + ReturnDeadHolds));
            var alive = new HashSet<Guid>();
            await using (var reader = await batch.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct)) alive.Add(reader.GetGuid(0));
            }
            // Resync before spending again: a lease whose row is gone was swept (this process was frozen or cut
            // off for longer than the TTL) and its credit is back in the balance. A lease acquired after this
            // heartbeat started may simply be newer than the statement, so it is left alone.
            foreach (var lease in _leases.Values)
                if (lease.HasRow && !alive.Contains(lease.Id) && lease.AcquiredTimestamp < started) Drop(lease);
            Interlocked.Exchange(ref _lastHeartbeatTimestamp, started);
            Interlocked.Exchange(ref _lastHeartbeatWallTicks, startedWall);
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
    private bool LeasesValid()
    {
        // Monotonic first (a wall-clock step back must not extend validity); the wall clock too, because a
        // suspended VM may not advance the monotonic clock while the database's clock runs on.
        var window = TimeSpan.FromSeconds(_options.LeaseTtlSeconds * 0.75);
        return _clock.GetElapsedTime(Interlocked.Read(ref _lastHeartbeatTimestamp)) < window &&
               _clock.GetUtcNow().UtcTicks - Interlocked.Read(ref _lastHeartbeatWallTicks) < window.Ticks;
    }

    /// <summary>
    /// A top-up of this lease was sent and not answered in time, so the database may hold more for it than this process
    /// knows. It takes no more reservations and leaves the map (the next call starts a fresh lease, a new id); the calls it
    /// already reserved settle on it as usual, and <see cref="ReleaseRetiredAsync"/> returns its row once they are written.
    /// </summary>
    private void Retire(UserLease lease)
    {
        lease.Dropped = true;
        _retired[lease.Id] = lease;   // before it leaves the map, so a flush always finds it
        _leases.TryRemove(new KeyValuePair<(Guid, Guid), UserLease>((lease.UserId, lease.MemberId ?? Guid.Empty), lease));
        LogLeaseRetired(lease.UserId, lease.Id);
    }

    /// <summary>
    /// Returns retired leases' rows to the balance: whatever each row holds (unreserved credit, and a top-up that
    /// committed after all), once the lease has no call in flight and all its spend is written, so nothing still being
    /// spent goes back. A top-up that commits after this writes a row no heartbeat renews; it expires and the sweep
    /// returns it.
    /// </summary>
    internal async Task ReleaseRetiredAsync(CancellationToken ct)
    {
        var quiet = new List<Guid>();
        foreach (var lease in _retired.Values)
            lock (lease)
                if (lease.InFlight == 0 && lease.Unflushed == 0) quiet.Add(lease.Id);
        if (quiet.Count == 0) return;
        try
        {
            await using var command = _dataSource.CreateCommand(
                "with dead as (delete from credit_leases where id = any($1) returning user_id, member_id, held_micros),\n" + ReturnDeadHolds);
            command.Parameters.Add(new() { Value = quiet.ToArray() });
            await command.ExecuteNonQueryAsync(ct);
            foreach (var id in quiet) _retired.TryRemove(id, out _);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            LogReleaseFailed(ex);
        }
    }

    /// <summary>
    /// The tail of a statement whose <c>dead</c> CTE deleted lease rows (returning user_id, member_id, held_micros): what
    /// they held goes back to the organizations' held credit and the members' held budgets. Lease rows (the delete),
    /// then accounts, then member rows (<c>locked</c> makes the accounts go first): the order every statement on leases locks in.
    /// </summary>
    private const string ReturnDeadHolds = """
        accounts as (
            update credit_accounts a set held_micros = greatest(a.held_micros - d.total, 0), updated_at = now()
            from (select user_id, sum(held_micros) as total from dead group by user_id) d where a.user_id = d.user_id
            returning a.user_id)
        update member_budgets b set held_micros = greatest(b.held_micros - d.total, 0), updated_at = now()
        from (select user_id, member_id, sum(held_micros) as total from dead where member_id is not null group by user_id, member_id) d
        cross join (select count(*) from accounts) locked
        where b.org_id = d.user_id and b.user_id = d.member_id
        """;

    private void Drop(UserLease lease)
    {
        lock (lease)
        {
            if (lease.Dropped) return;
            lease.Dropped = true;
            lease.Available = Math.Min(lease.Available, 0);
            lease.Held = 0;
        }
        _leases.TryRemove(new KeyValuePair<(Guid, Guid), UserLease>((lease.UserId, lease.MemberId ?? Guid.Empty), lease));
        LogLeaseDropped(lease.UserId, lease.Id);
    }

    internal sealed class UserLease(Guid userId, Guid? memberId)
    {
        public Guid Id { get; } = Guid.CreateVersion7();
        /// <summary>The organization whose balance the lease holds.</summary>
        public Guid UserId { get; } = userId;
        /// <summary>The member whose monthly budget it holds too; null: the organization's own lease.</summary>
        public Guid? MemberId { get; } = memberId;
        public SemaphoreSlim Gate { get; } = new(1, 1);
        /// <summary>Credit of this lease not reserved by any request; negative after an overshoot.</summary>
        public long Available;
        /// <summary>What the database holds for this lease (minus spend already written).</summary>
        public long Held;
        public long Unflushed;
        public int InFlight;
        public long LastUsedTimestamp;
        /// <summary>A credit_leases row was written for it (so a heartbeat that does not find one means it was swept).</summary>
        public bool HasRow;
        public long AcquiredTimestamp;
        /// <summary>Its row was swept, or it was retired: nothing more is reserved from it; settlements of its reservations still run.</summary>
        public volatile bool Dropped;
        public volatile bool ReturnRequested;
    }

    /// <summary>
    /// A key's spend as this instance knows it, for the key's credit limit: <see cref="Spent"/> is the highest
    /// spend the database reported (key loads and this instance's own flushes, which return the committed total,
    /// other instances' flushes included), so it only rises; <see cref="Pending"/> is what this instance
    /// reserved or settled and has not written yet.
    /// </summary>
    internal sealed class KeySpend
    {
        public long Spent;
        public long Pending;

        public void RaiseSpent(long value)
        {
            var current = Volatile.Read(ref Spent);
            while (value > current)
            {
                var seen = Interlocked.CompareExchange(ref Spent, value, current);
                if (seen == current) return;
                current = seen;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not lease credit for user {UserId}")]
    private partial void LogLeaseFailed(Exception ex, Guid userId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not return leased credit of user {UserId}; retrying")]
    private partial void LogReturnFailed(Exception ex, Guid userId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Credit lease {LeaseId} of user {UserId} was swept while this instance could not renew it; dropped")]
    private partial void LogLeaseDropped(Guid userId, Guid leaseId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A top-up of credit lease {LeaseId} of user {UserId} was not answered in time; the lease is retired")]
    private partial void LogLeaseRetired(Guid userId, Guid leaseId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not release retired credit leases; retrying")]
    private partial void LogReleaseFailed(Exception ex);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not renew credit leases")]
    private partial void LogHeartbeatFailed(Exception ex);
}
