using System.Collections.Concurrent;
using System.Collections.Frozen;
using AiGate.Web.Data;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Keys;

/// <summary>
/// What the gateway knows about the key of a request. <see cref="PlanId"/> is the owner's billing plan (null: no
/// billing account yet, the free plan). <see cref="AccountRequestsPerMinute"/> and <see cref="AccountTokensPerMinute"/>
/// are the account-wide rate limits (plan, usage tier or admin override, <see cref="UsageTiers"/>), resolved when the
/// key is loaded so there is no lookup per request; 0 = not resolved, the plan's. <see cref="Suspended"/>: an operator
/// suspended the account, every call gets a 403. <see cref="OwnerId"/> is the organization; <see cref="CreatedBy"/> the member
/// whose caps the key carries; <see cref="OrgOwnerId"/> the user who owns the organization. <see cref="MemberBudgetMicros"/>,
/// <see cref="MemberRequestsPerMinute"/> and <see cref="MemberTokensPerMinute"/> are the creator's caps in the organization
/// (null: none), loaded with the key; a change of them publishes <c>owner:{org id}</c>. <see cref="Disputed"/>: a Stripe
/// dispute froze the account; <see cref="ApiKeyCache.FindAsync"/> answers null for it (the one 401), but the entry is kept
/// as a found key so that the <c>owner:{id}</c> notice of clearing the dispute evicts it at once (a not-found entry has no
/// owner to match and would wait out its TTL).
/// </summary>
public sealed record KeyIdentity(
    Guid KeyId, Guid OwnerId, string Prefix, DateTimeOffset? ExpiresAt, long? CreditLimitMicros, long SpentMicros,
    int? RequestsPerMinute, int? TokensPerMinute, FrozenSet<string> AllowedModels, string? PlanId = null,
    long AccountRequestsPerMinute = 0, long AccountTokensPerMinute = 0, bool Suspended = false, Guid CreatedBy = default, Guid OrgOwnerId = default,
    long? MemberBudgetMicros = null, int? MemberRequestsPerMinute = null, long? MemberTokensPerMinute = null, bool Disputed = false)
{
    /// <summary>
    /// The member whose monthly spend this key's calls count (<c>member_budgets</c>): the creator, in any organization but
    /// their own personal one (there the organization's spend is theirs already), or whenever they have a budget. Null: not counted.
    /// </summary>
    public Guid? SpendMember => CreatedBy != Guid.Empty && (CreatedBy != OwnerId || MemberBudgetMicros is not null) ? CreatedBy : null;
}

/// <summary>
/// Bearer key → <see cref="KeyIdentity"/>, without a database round trip in the steady state.
/// A malformed key is refused before any lookup (checksum). Found and not-found answers are both
/// cached for a short TTL; revocation, rotation and account changes evict entries on every instance
/// through <see cref="CacheNotifications"/> (payloads <c>key:{id}</c> and <c>owner:{id}</c>).
/// Database down (RELIABILITY "Database outage"): a key found before keeps being accepted for
/// <see cref="KeysOptions.StaleIfErrorSeconds"/> after it was last loaded (billable calls need a valid
/// lease on top, so they stop when the instance's leases do); anything else throws
/// <see cref="DatabaseUnavailableException"/>, a 503. A lookup waits for the database no longer than
/// <see cref="DatabaseDeadline"/> allows (a hung server counts as down). Nothing is cached from a failed lookup, so
/// the first lookup after the database returns reads it again.
/// </summary>
public sealed class ApiKeyCache
{
    private const int MaxEntries = 100_000;
    /// <summary>The lookup's SQL starts with this comment, so it can be told apart in <c>pg_stat_activity</c> and the logs.</summary>
    public const string LookupTag = "api key lookup";
    private static readonly TimeSpan NegativeTtl = TimeSpan.FromSeconds(5);
    /// <summary>While the database is down, a stale entry is served this long before the next lookup is tried.</summary>
    private static readonly TimeSpan RetryAfterError = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Guid, DateTimeOffset> _lastUsed = new();
    /// <summary>Lookups running now, by cache key; calls that miss the same key meanwhile wait for that one. A notice clears it.</summary>
    private readonly ConcurrentDictionary<string, Task<Entry>> _loading = new(StringComparer.Ordinal);
    private readonly IServiceScopeFactory _scopes;
    private readonly ApiKeyHasher _hasher;
    private readonly TimeProvider _clock;
    private readonly TimeSpan _ttl;
    private readonly TimeSpan _staleIfError;
    private readonly BillingOptions _billing;
    private readonly DatabaseDeadline _database;

    public ApiKeyCache(IServiceScopeFactory scopes, ApiKeyHasher hasher, TimeProvider clock, IOptions<KeysOptions> options, CacheNotifications notifications,
        IOptions<BillingOptions> billing, DatabaseDeadline database)
    {
        _database = database;
        _billing = billing.Value;
        _scopes = scopes;
        _hasher = hasher;
        _clock = clock;
        _ttl = TimeSpan.FromSeconds(options.Value.CacheSeconds);
        _staleIfError = TimeSpan.FromSeconds(options.Value.StaleIfErrorSeconds);
        notifications.Subscribe(OnNotice);
    }

    public async ValueTask<KeyIdentity?> FindAsync(string key, CancellationToken ct)
    {
        if (!ApiKeyFormat.IsWellFormed(key)) return null;
        var hash = _hasher.Hash(key);
        var cacheKey = Convert.ToBase64String(hash);
        var now = _clock.GetUtcNow();

        if (!_entries.TryGetValue(cacheKey, out var entry) || entry.StaleAt <= now)
            entry = await LoadOnceAsync(cacheKey, hash, entry, now).WaitAsync(ct);

        var found = entry.Identity;
        if (found is null || found.Disputed || found.ExpiresAt <= now) return null;
        _lastUsed[found.KeyId] = now;
        return found;
    }

    /// <summary>
    /// One lookup per key at a time: calls that miss together (a cold cache after a deploy, a burst on a new key) wait
    /// for the same one instead of each taking a connection and a query of its own. The lookup runs to its deadline
    /// whichever of its callers abort.
    /// </summary>
    private Task<Entry> LoadOnceAsync(string cacheKey, byte[] hash, Entry? previous, DateTimeOffset now)
    {
        if (_loading.TryGetValue(cacheKey, out var running)) return running;
        var mine = new TaskCompletionSource<Entry>(TaskCreationOptions.RunContinuationsAsynchronously);
        var load = _loading.GetOrAdd(cacheKey, mine.Task);
        if (load == mine.Task) _ = LoadIntoAsync(mine, cacheKey, hash, previous, now);
        return load;
    }

    private async Task LoadIntoAsync(TaskCompletionSource<Entry> into, string cacheKey, byte[] hash, Entry? previous, DateTimeOffset now)
    {
        var running = new KeyValuePair<string, Task<Entry>>(cacheKey, into.Task);
        try
        {
            Entry entry;
            try
            {
                var identity = await _database.RunAsync(static (state, token) => state.Self.LoadAsync(state.Hash, token), (Self: this, Hash: hash), CancellationToken.None);
                if (_entries.Count >= MaxEntries) _entries.Clear();   // a flood of distinct valid-looking keys: start over
                entry = new Entry(identity, now + (identity is null ? NegativeTtl : _ttl), now);
            }
            catch (Exception ex) when (DatabaseUnavailableException.IsOutage(ex))
            {
                // Stale-if-error, bounded: only a key that was valid when last read, and only for a while.
                if (previous is not { Identity: not null } known || now - known.LoadedAt >= _staleIfError) throw new DatabaseUnavailableException(ex);
                entry = known with { StaleAt = now + RetryAfterError };
            }
            _entries[cacheKey] = entry;
            // A notice cleared it from the lookups in flight while it ran: what it read may predate a revocation, so it
            // answers its callers (who came before the notice) and is not kept. Written first, so a notice that comes
            // after this check evicts it as usual.
            if (!_loading.TryRemove(running)) _entries.TryRemove(new KeyValuePair<string, Entry>(cacheKey, entry));
            into.SetResult(entry);
        }
        catch (Exception ex)
        {
            _loading.TryRemove(running);
            into.SetException(ex);
        }
    }

    /// <summary>
    /// Runs the lookup once for a hash no key has, so EF Core compiles its query at start (≈ 65 ms on the dev machine)
    /// instead of in the first calls after a deploy, where concurrent first lookups of different keys would each compile
    /// it inside their deadline. A database not there yet is fine: the next call looks up as usual.
    /// </summary>
    public async Task WarmAsync()
    {
        try
        {
            await LoadAsync(new byte[32], CancellationToken.None);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Nothing to do: warming is an optimisation, and a real lookup reports its own failure.
        }
    }

    /// <summary>Keys used since the last call, with when; <see cref="KeyUsageFlusher"/> writes them in one statement.</summary>
    public IReadOnlyList<(Guid KeyId, DateTimeOffset At)> TakeLastUsed()
    {
        var taken = new List<(Guid, DateTimeOffset)>(_lastUsed.Count);
        foreach (var (id, at) in _lastUsed)
            if (_lastUsed.TryRemove(new KeyValuePair<Guid, DateTimeOffset>(id, at))) taken.Add((id, at));
        return taken;
    }

    private async Task<KeyIdentity?> LoadAsync(byte[] hash, CancellationToken ct)
    {
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        // The key's organization and the member who created it: the creator must still be a member with a confirmed
        // e-mail. Suspension and the operator's rate overrides are the owner's (an operator suspends a person: the keys
        // they created and the organizations they own stop); a disputed organization's keys stop too (billing flags
        // it and notifies owner:{org id}).
        var row = await (
            from k in db.Set<ApiKey>().AsNoTracking().TagWith(LookupTag)
            join member in db.Set<OrgMember>() on new { Org = k.OwnerId, User = k.CreatedBy } equals new { Org = member.OrgId, User = member.UserId }
            join creator in db.Set<AppUser>() on k.CreatedBy equals creator.Id
            join ownership in db.Set<OrgMember>().Where(m => m.Role == OrgRole.Owner) on k.OwnerId equals ownership.OrgId
            join owner in db.Set<AppUser>() on ownership.UserId equals owner.Id
            where k.KeyHash == hash && k.RevokedAt == null && creator.EmailConfirmed
            select new
            {
                k.Id, k.OwnerId, k.CreatedBy, OwnerUserId = owner.Id, k.Prefix, k.ExpiresAt, k.CreditLimitMicros, k.SpentMicros,
                k.RequestsPerMinute, k.TokensPerMinute, k.AllowedModels,
                member.MonthlyBudgetMicros, MemberRequestsPerMinute = member.RequestsPerMinute, MemberTokensPerMinute = member.TokensPerMinute,
                PlanId = db.Set<BillingAccount>().Where(b => b.UserId == k.OwnerId).Select(b => b.PlanId).FirstOrDefault(),
                Disputed = db.Set<BillingAccount>().Any(b => b.UserId == k.OwnerId && b.DisputedAt != null),
                // Suspension, overrides and the total paid (usage tier) change with an owner:{id} notice.
                Suspended = creator.SuspendedAt != null || owner.SuspendedAt != null,
                owner.RequestsPerMinuteOverride,
                owner.TokensPerMinuteOverride,
                PaidCents = db.Set<StripePayment>().Where(p => p.UserId == k.OwnerId).Sum(UsageTiers.NetPaidCents),
            })
            .FirstOrDefaultAsync(ct);
        if (row is null) return null;
        var limits = UsageTiers.Resolve(_billing, row.PlanId, row.PaidCents, row.RequestsPerMinuteOverride, row.TokensPerMinuteOverride);
        return new KeyIdentity(row.Id, row.OwnerId, row.Prefix, row.ExpiresAt, row.CreditLimitMicros, row.SpentMicros, row.RequestsPerMinute,
            row.TokensPerMinute, row.AllowedModels.ToFrozenSet(StringComparer.Ordinal), row.PlanId, limits.RequestsPerMinute, limits.TokensPerMinute,
            row.Suspended, row.CreatedBy, row.OwnerUserId, row.MonthlyBudgetMicros, row.MemberRequestsPerMinute, row.MemberTokensPerMinute, row.Disputed);
    }

    private void OnNotice(string? payload)
    {
        // Lookups running now may have read before the change: calls from now on start their own, and theirs are not kept.
        _loading.Clear();
        if (payload is null)
        {
            // Notices may have been missed (the listener reconnected, or lost the database): reload every key on
            // its next use, but keep the known ones as the stale-if-error fallback should the database be down.
            foreach (var (cacheKey, entry) in _entries)
            {
                if (entry.Identity is null) _entries.TryRemove(cacheKey, out _);
                else _entries.TryUpdate(cacheKey, entry with { StaleAt = DateTimeOffset.MinValue }, entry);
            }
            return;
        }
        if (payload.StartsWith("key:", StringComparison.Ordinal) && Guid.TryParse(payload.AsSpan(4), out var keyId))
            Evict(e => e.KeyId == keyId);
        else if (payload.StartsWith("owner:", StringComparison.Ordinal) && Guid.TryParse(payload.AsSpan(6), out var ownerId))
            Evict(e => e.OwnerId == ownerId || e.CreatedBy == ownerId || e.OrgOwnerId == ownerId);
    }

    private void Evict(Func<KeyIdentity, bool> match)
    {
        foreach (var (cacheKey, entry) in _entries)
            if (entry.Identity is { } identity && match(identity)) _entries.TryRemove(cacheKey, out _);
    }

    private sealed record Entry(KeyIdentity? Identity, DateTimeOffset StaleAt, DateTimeOffset LoadedAt);
}
