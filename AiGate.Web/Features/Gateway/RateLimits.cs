using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Globalization;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Keys;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The verdict on one request, with what the <c>x-ratelimit-*</c> headers report. <see cref="MemberLimit"/>: what refused it
/// is the member's own cap in the organization (and <see cref="MemberCap"/> that cap), not the key's or the organization's.
/// </summary>
public readonly record struct RateDecision(bool Allowed, string? Exceeded, TimeSpan RetryAfter,
    long RequestLimit, long RequestsRemaining, TimeSpan RequestsReset, long TokenLimit, long TokensRemaining, TimeSpan TokensReset,
    bool MemberLimit = false, long MemberCap = 0);

/// <summary>
/// RPM and TPM per key (the key's own limits), per member of the organization (the caps an admin set for the key's
/// creator, issue 17) and per account (plan, usage tier or admin override, resolved on the
/// cached <see cref="KeyIdentity"/>; no plan yet means the free plan; tokens are the prompt estimate +
/// output limit at admission, as OpenAI counts), as token
/// buckets that refill continuously over a minute. Several instances share the limits by each
/// enforcing its share, limit ÷ live instances (<see cref="InstanceRegistry"/>), so the total stays
/// within the limit however the load balancer spreads requests (RELIABILITY F12); one instance
/// enforces the exact limit. Headers and 429s follow OpenAI's names.
/// </summary>
public sealed class RateLimits(IOptions<BillingOptions> billing, InstanceRegistry instances, TimeProvider clock)
{
    /// <summary>Buckets by (id, member, kind): the account's (org, empty), a key's (key, empty), a member's (org, member).</summary>
    private readonly ConcurrentDictionary<(Guid, Guid, char), Bucket> _buckets = new();
    // Plans are fixed for the life of the process: look them up by id without a scan per request.
    private readonly FrozenDictionary<string, PlanOption> _plans = billing.Value.Plans.ToFrozenDictionary(p => p.Id, StringComparer.Ordinal);
    private readonly PlanOption _freePlan = billing.Value.FreePlan;

    /// <summary>
    /// Takes <paramref name="requests"/> from the request buckets and <paramref name="tokens"/> from the token
    /// buckets, all or nothing. The gateway asks twice: one request before it reads the body (so a refused
    /// client costs no parsing, issue 11 #5), then the tokens once the body tells how many.
    /// </summary>
    public RateDecision Check(KeyIdentity key, long requests, long tokens)
    {
        var share = Math.Max(1, instances.LiveInstances);
        // The key cache resolved the account's limits (plan, usage tier or admin override); the plan is the fallback.
        long accountRpm = key.AccountRequestsPerMinute, accountTpm = key.AccountTokensPerMinute;
        if (accountRpm <= 0 || accountTpm <= 0)
        {
            var plan = key.PlanId is not null && _plans.TryGetValue(key.PlanId, out var found) ? found : _freePlan;
            (accountRpm, accountTpm) = (plan.RequestsPerMinute, plan.TokensPerMinute);
        }
        var now = clock.GetTimestamp();

        var accountRequests = Get(key.OwnerId, Guid.Empty, 'r', Share(accountRpm, share));
        var accountTokens = Get(key.OwnerId, Guid.Empty, 't', Share(accountTpm, share));
        var keyRequests = key.RequestsPerMinute is { } rpm ? Get(key.KeyId, Guid.Empty, 'R', Share(rpm, share)) : null;
        var keyTokens = key.TokensPerMinute is { } tpm ? Get(key.KeyId, Guid.Empty, 'T', Share(tpm, share)) : null;
        // The member's caps are shared by all of their keys in this organization (a member of two organizations has two).
        var memberRequests = key.MemberRequestsPerMinute is { } mrpm ? Get(key.OwnerId, key.CreatedBy, 'm', Share(mrpm, share)) : null;
        var memberTokens = key.MemberTokensPerMinute is { } mtpm ? Get(key.OwnerId, key.CreatedBy, 'n', Share(mtpm, share)) : null;

        // The tightest bucket of each kind is what the client sees in the headers.
        var requestBucket = Tighter(Tighter(accountRequests, memberRequests), keyRequests);
        var tokenBucket = Tighter(Tighter(accountTokens, memberTokens), keyTokens);

        // The member's and the key's buckets belong to the organization, so its two locks guard them too.
        lock (accountRequests)
        lock (accountTokens)
        {
            // Unrolled over the six buckets (two per call on the hot path): no arrays, no tuples.
            accountRequests.Refill(now, clock);
            accountTokens.Refill(now, clock);
            keyRequests?.Refill(now, clock);
            keyTokens?.Refill(now, clock);
            memberRequests?.Refill(now, clock);
            memberTokens?.Refill(now, clock);
            string? exceeded = null;
            var wait = TimeSpan.Zero;
            var member = false;
            long memberCap = 0;
            Short(keyRequests, requests, "requests", ref exceeded, ref wait);
            if (Short(memberRequests, requests, "requests", ref exceeded, ref wait)) (member, memberCap) = (true, key.MemberRequestsPerMinute!.Value);
            Short(accountRequests, requests, "requests", ref exceeded, ref wait);
            Short(keyTokens, tokens, "tokens", ref exceeded, ref wait);
            if (Short(memberTokens, tokens, "tokens", ref exceeded, ref wait)) (member, memberCap) = (true, key.MemberTokensPerMinute!.Value);
            Short(accountTokens, tokens, "tokens", ref exceeded, ref wait);
            if (exceeded is null)
            {
                Take(keyRequests, requests);
                Take(memberRequests, requests);
                Take(accountRequests, requests);
                Take(keyTokens, tokens);
                Take(memberTokens, tokens);
                Take(accountTokens, tokens);
            }
            return new RateDecision(exceeded is null, exceeded, wait,
                requestBucket.Capacity, (long)Math.Max(0, requestBucket.Available), requestBucket.UntilFull,
                tokenBucket.Capacity, (long)Math.Max(0, tokenBucket.Available), tokenBucket.UntilFull, member, memberCap);
        }
    }

    private static Bucket Tighter(Bucket bucket, Bucket? other) => other is not null && other.Capacity < bucket.Capacity ? other : bucket;

    /// <summary>
    /// Notes a bucket that cannot give <paramref name="need"/> now, and how long until it can. True when this bucket is
    /// the first one short, so it names what refused the request.
    /// </summary>
    private static bool Short(Bucket? bucket, long need, string kind, ref string? exceeded, ref TimeSpan wait)
    {
        if (bucket is null || need <= 0 || bucket.Available >= Math.Min(need, bucket.Capacity)) return false;
        var first = exceeded is null;
        exceeded ??= kind;
        var missing = Math.Min(need, bucket.Capacity) - bucket.Available;
        wait = TimeSpan.FromSeconds(Math.Max(wait.TotalSeconds, missing / bucket.PerSecond));
        return first;
    }

    private static void Take(Bucket? bucket, long need)
    {
        if (bucket is not null && need > 0) bucket.Available -= Math.Min(need, bucket.Capacity);
    }

    /// <summary>Gives back tokens admitted on an estimate that the call did not use.</summary>
    public void Refund(KeyIdentity key, long tokens)
    {
        if (tokens <= 0 || !_buckets.TryGetValue((key.OwnerId, Guid.Empty, 'r'), out var accountRequests) ||
            !_buckets.TryGetValue((key.OwnerId, Guid.Empty, 't'), out var accountTokens))
            return;
        lock (accountRequests)   // the same locks, in the same order, as Check
        lock (accountTokens)
        {
            accountTokens.Available = Math.Min(accountTokens.Capacity, accountTokens.Available + tokens);
            if (_buckets.TryGetValue((key.KeyId, Guid.Empty, 'T'), out var keyTokens))
                keyTokens.Available = Math.Min(keyTokens.Capacity, keyTokens.Available + tokens);
            if (key.MemberTokensPerMinute is not null && _buckets.TryGetValue((key.OwnerId, key.CreatedBy, 'n'), out var memberTokens))
                memberTokens.Available = Math.Min(memberTokens.Capacity, memberTokens.Available + tokens);
        }
    }

    /// <summary>Admits one request before its body is read, or writes the 429; the headers go on either answer.</summary>
    public Task<bool> AdmitRequestAsync(HttpContext context, KeyIdentity key) => AdmitAsync(context, Check(key, 1, 0));

    /// <summary>Admits the tokens of a request already counted by <see cref="AdmitRequestAsync"/>, or writes the 429.</summary>
    public Task<bool> AdmitTokensAsync(HttpContext context, KeyIdentity key, long tokens) => AdmitAsync(context, Check(key, 0, Math.Max(1, tokens)));

    private static async Task<bool> AdmitAsync(HttpContext context, RateDecision decision)
    {
        WriteHeaders(context.Response, decision);
        if (decision.Allowed) return true;
        if (decision.MemberLimit)
        {
            // The member's own cap in the organization (set by its owner or an admin), named so they know whom to ask.
            await ApiErrors.WriteAsync(context, StatusCodes.Status429TooManyRequests,
                $"Rate limit reached for {decision.Exceeded} per minute: your organization limits you to {decision.MemberCap} {decision.Exceeded} " +
                $"per minute across your keys. Please try again in {Duration(decision.RetryAfter)}, or ask an owner or admin of the organization to raise it.",
                decision.Exceeded!, "member_rate_limit_exceeded", retryAfter: decision.RetryAfter);
            return false;
        }
        var limit = decision.Exceeded == "tokens" ? decision.TokenLimit : decision.RequestLimit;
        await ApiErrors.WriteAsync(context, StatusCodes.Status429TooManyRequests,
            $"Rate limit reached for {decision.Exceeded} per minute (limit {limit} on this instance). " +
            $"Please try again in {Duration(decision.RetryAfter)}.", decision.Exceeded!, "rate_limit_exceeded",
            retryAfter: decision.RetryAfter);
        return false;
    }

    public static void WriteHeaders(HttpResponse response, in RateDecision d)
    {
        var h = response.Headers;
        h["x-ratelimit-limit-requests"] = Limit(d.RequestLimit);
        h["x-ratelimit-remaining-requests"] = Number(d.RequestsRemaining);
        h["x-ratelimit-reset-requests"] = Duration(d.RequestsReset);
        h["x-ratelimit-limit-tokens"] = Limit(d.TokenLimit);
        h["x-ratelimit-remaining-tokens"] = Number(d.TokensRemaining);
        h["x-ratelimit-reset-tokens"] = Duration(d.TokensReset);
    }

    // Six header values on every answer, mostly the same few small numbers and durations: each text is made once
    // (issue 16). A race writes the same string twice, harmlessly.
    private static readonly string?[] NumberTexts = new string?[10_000];
    private static readonly string?[] MillisecondTexts = new string?[1000];
    private static readonly string?[] SecondTexts = new string?[61];

    private static string Number(long n) => (ulong)n < (ulong)NumberTexts.Length
        ? NumberTexts[n] ??= n.ToString(CultureInfo.InvariantCulture)
        : n.ToString(CultureInfo.InvariantCulture);

    // The limits are a few values (plans, tiers, keys' own, each ÷ live instances) however large: each text is made once,
    // up to a bound (a key's own limits are set by users).
    private static readonly BoundedCache<long, string> LimitTexts = new(4096);

    private static string Limit(long n) => (ulong)n < (ulong)NumberTexts.Length
        ? Number(n)
        : LimitTexts.GetOrAdd(n, 0, static (n, _) => n.ToString(CultureInfo.InvariantCulture));

    /// <summary>OpenAI's reset format: "1s", "6m0s", "120ms".</summary>
    internal static string Duration(TimeSpan t)
    {
        if (t.TotalSeconds < 1)
        {
            var ms = Math.Max(0, (int)Math.Ceiling(t.TotalMilliseconds));
            return ms < MillisecondTexts.Length
                ? MillisecondTexts[ms] ??= string.Create(CultureInfo.InvariantCulture, $"{ms}ms")
                : "1000ms";
        }
        if (t.TotalMinutes >= 1) return string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalMinutes}m{t.Seconds}s");
        var seconds = (int)Math.Ceiling(t.TotalSeconds);
        return SecondTexts[seconds] ??= string.Create(CultureInfo.InvariantCulture, $"{seconds}s");
    }

    private static long Share(long limit, int instances) => Math.Max(1, limit / instances);

    private Bucket Get(Guid id, Guid member, char kind, long capacity)
    {
        var bucket = _buckets.GetOrAdd((id, member, kind), static (_, c) => new Bucket(c), capacity);
        if (bucket.Capacity != capacity)
            lock (bucket) bucket.Resize(capacity);   // the instance count or the key's limit changed
        return bucket;
    }

    private sealed class Bucket(long capacity)
    {
        public long Capacity { get; private set; } = capacity;
        public double Available { get; set; } = capacity;
        public double PerSecond => Capacity / 60.0;
        private long _last;

        public TimeSpan UntilFull => TimeSpan.FromSeconds(Math.Max(0, (Capacity - Available) / PerSecond));

        public void Refill(long now, TimeProvider clock)
        {
            if (_last != 0) Available = Math.Min(Capacity, Available + clock.GetElapsedTime(_last, now).TotalSeconds * PerSecond);
            _last = now;
        }

        public void Resize(long capacity)
        {
            Available = Math.Min(Available, capacity);
            Capacity = capacity;
        }
    }
}
