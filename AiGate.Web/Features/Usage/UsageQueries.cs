using Npgsql;

namespace AiGate.Web.Features.Usage;

public enum UsageGrouping { Day, Model, Key, Provider, Member }

/// <summary>Sums of a set of calls. Money in micro-USD.</summary>
public readonly record struct UsageTotals(long Requests, long PromptTokens, long CompletionTokens, long CachedTokens, long CostMicros, long Errors,
    long ByokRequests = 0)
{
    public static UsageTotals operator +(UsageTotals a, UsageTotals b) => new(
        a.Requests + b.Requests, a.PromptTokens + b.PromptTokens, a.CompletionTokens + b.CompletionTokens,
        a.CachedTokens + b.CachedTokens, a.CostMicros + b.CostMicros, a.Errors + b.Errors, a.ByokRequests + b.ByokRequests);
}

/// <summary>
/// One group of a summary. <see cref="Day"/> is set when grouped by day, <see cref="Model"/> by model,
/// <see cref="KeyId"/> (with the key's name and prefix, null when the key no longer exists) by key, <see cref="Provider"/>
/// by provider, <see cref="MemberId"/> and <see cref="MemberEmail"/> by member (the user who created the key; both null when the
/// key no longer exists, the e-mail alone null when its creator is no longer a user: "former member"). <see cref="Latency"/> counts its calls per <see cref="LatencyHistogram"/> bucket (the calls whose latency
/// is known: all but those rolled up and pruned before migration 0024); null when none is.
/// </summary>
public sealed record UsageGroup(DateOnly? Day, string? Model, Guid? KeyId, string? KeyName, string? KeyPrefix, UsageTotals Totals,
    string? Provider = null, long[]? Latency = null, Guid? MemberId = null, string? MemberEmail = null);

/// <summary>The groups and their sum; <see cref="Latency"/> is the sum of the groups' latency histograms.</summary>
public sealed record UsageSummary(IReadOnlyList<UsageGroup> Groups, UsageTotals Total, long[]? Latency = null);

/// <summary>
/// What a set of calls earned (micro-USD): <see cref="RevenueMicros"/> charged in all; <see cref="CostedRevenueMicros"/> of it
/// charged for calls whose provider list cost is known (metered after migration 0016), which cost <see cref="ProviderCostMicros"/>.
/// The margin is taken over the calls with a known cost only, so older calls never inflate it.
/// </summary>
public readonly record struct RevenueTotals(long Requests, long RevenueMicros, long CostedRevenueMicros, long ProviderCostMicros)
{
    public long MarginMicros => CostedRevenueMicros - ProviderCostMicros;
    /// <summary>Revenue of calls without a recorded provider cost.</summary>
    public long UncostedRevenueMicros => RevenueMicros - CostedRevenueMicros;
    /// <summary>Margin as a share of the revenue it was earned on, in percent; null when no call had a known cost.</summary>
    public decimal? MarginPercent => CostedRevenueMicros == 0 ? null : Math.Round(MarginMicros * 100m / CostedRevenueMicros, 1);

    public static RevenueTotals operator +(RevenueTotals a, RevenueTotals b) => new(
        a.Requests + b.Requests, a.RevenueMicros + b.RevenueMicros, a.CostedRevenueMicros + b.CostedRevenueMicros, a.ProviderCostMicros + b.ProviderCostMicros);
}

/// <summary>One group of <see cref="UsageQueries.RevenueAsync"/>: exactly one of day, model and account is set.</summary>
public sealed record RevenueGroup(DateOnly? Day, string? Model, Guid? UserId, RevenueTotals Totals);

/// <summary>
/// Every aggregate over a user's usage (the /api/v1/usage endpoint, the dashboard's month and chart)
/// goes through <see cref="SummarizeAsync"/>, always filtered by owner. A range shorter than a day is
/// one grouped statement over raw <c>usage_events</c> (the <c>(user_id, created_at)</c> index). One of a
/// day or more reads the rollups (<see cref="UsageRollup"/>): daily rows for the whole days inside
/// it, hourly rows for the whole hours at its edges, raw events for the partial hours at its very
/// edges, plus the raw events the rollup has not reached yet (ids above its watermark). The rollups
/// hold exactly the events up to the watermark, and the statement reads the watermark and both
/// sources in one snapshot, so the answer equals the raw-only one, event for event, as long as the
/// raw events are kept — and after they are pruned, the rollups still have them.
/// </summary>
public sealed class UsageQueries(NpgsqlDataSource dataSource)
{
    /// <summary>The longest range one summary may cover (days, inclusive).</summary>
    public const int MaxDays = 366;

    /// <summary>One usage event as a row of the shape every source below produces.</summary>
    private const string RawRow = """
        (e.created_at at time zone 'UTC')::date as day, e.model_id, e.key_id, 1::bigint as requests, e.prompt_tokens,
        e.completion_tokens, e.cached_tokens, e.cost_micros, (e.status >= 400)::int::bigint as errors, e.user_id, e.provider_cost_micros,
        e.provider, usage_latency_histogram(e.latency_ms) as latency_histogram, e.byok::int::bigint as byok_requests
        """;

    private const string RollupRow = "r.model_id, r.key_id, r.requests, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cost_micros, r.errors, r.user_id, " +
                                     "r.provider_cost_micros, r.provider, r.latency_histogram, r.byok_requests";

    /// <summary>
    /// Usage of <paramref name="userId"/> (the organization) from <paramref name="from"/> (inclusive) to <paramref name="to"/>
    /// (exclusive), grouped. Groups come ordered (day ascending; model, key, provider and member by cost, highest first).
    /// Days without calls are not returned (see <see cref="FillDays"/>). With <paramref name="keyId"/>, only that key's calls;
    /// with <paramref name="memberId"/>, only the calls of the keys that member created (<c>api_keys.created_by</c>).
    /// </summary>
    public async Task<UsageSummary> SummarizeAsync(Guid userId, DateTimeOffset from, DateTimeOffset to, UsageGrouping grouping, CancellationToken ct,
        Guid? keyId = null, Guid? memberId = null)
    {
        from = from.ToUniversalTime();
        to = to.ToUniversalTime();
        // The grouping expressions are constants chosen by the enum, never input; the values are parameters.
        var (select, groupBy, orderBy) = grouping switch
        {
            UsageGrouping.Day => ("p.day, null::text, null::uuid, null::text, null::text", "1", "1"),
            UsageGrouping.Model => ("null::date, p.model_id, null::uuid, null::text, null::text", "2", "10 desc, 2"),
            UsageGrouping.Key => ("null::date, null::text, p.key_id, min(k.name), min(k.prefix)", "3", "10 desc, 4, 3"),
            UsageGrouping.Provider => ("null::date, null::text, null::uuid, null::text, null::text", "p.provider", "10 desc, 13"),
            UsageGrouping.Member => ("null::date, null::text, null::uuid, null::text, null::text", "k.created_by", "10 desc, 16, 15"),
            _ => throw new ArgumentOutOfRangeException(nameof(grouping)),
        };
        // The key join is owner-filtered too: a key of another organization never lends its name or creator, whatever usage_events says.
        var join = grouping switch
        {
            UsageGrouping.Key => "left join api_keys k on k.id = p.key_id and k.owner_id = $1",
            UsageGrouping.Member => "left join api_keys k on k.id = p.key_id and k.owner_id = $1 left join users u on u.id = k.created_by",
            _ => "",
        };
        var useRollups = to - from >= TimeSpan.FromDays(1);
        var source = useRollups ? RollupSource(oneUser: true) : $"select {RawRow} from usage_events e where e.user_id = $1 and e.created_at >= $2 and e.created_at < $3";
        // The filters' parameters follow the source's own ($4 on after the raw source's three, $10 on after the rollups' nine).
        var next = useRollups ? 10 : 4;
        var filters = new List<string>(2);
        if (keyId is not null) filters.Add($"p.key_id = ${next++}");
        // A member's usage is that of the keys they created in this organization; the rollups carry the key, not its creator.
        if (memberId is not null) filters.Add($"p.key_id in (select mk.id from api_keys mk where mk.owner_id = $1 and mk.created_by = ${next++})");
        var where = filters.Count == 0 ? "" : "where " + string.Join(" and ", filters);

        await using var command = dataSource.CreateCommand($"""
            select {select},
                   coalesce(sum(p.requests), 0)::bigint, coalesce(sum(p.prompt_tokens), 0)::bigint, coalesce(sum(p.completion_tokens), 0)::bigint,
                   coalesce(sum(p.cached_tokens), 0)::bigint, coalesce(sum(p.cost_micros), 0)::bigint, coalesce(sum(p.errors), 0)::bigint,
                   usage_histogram_sum(p.latency_histogram), {(grouping == UsageGrouping.Provider ? "p.provider" : "null::text")},
                   coalesce(sum(p.byok_requests), 0)::bigint,
                   {(grouping == UsageGrouping.Member ? "k.created_by, min(u.email)" : "null::uuid, null::text")}
            from ({source}) p {join}
            {where}
            group by {groupBy}
            order by {orderBy}
            """);
        command.Parameters.Add(new() { Value = userId });
        command.Parameters.Add(new() { Value = from });
        command.Parameters.Add(new() { Value = to });
        if (useRollups) AddRollupParameters(command, from, to);
        if (keyId is not null) command.Parameters.Add(new() { Value = keyId.Value });
        if (memberId is not null) command.Parameters.Add(new() { Value = memberId.Value });

        var groups = new List<UsageGroup>();
        var total = default(UsageTotals);
        long[]? latency = null;
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var totals = new UsageTotals(reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8), reader.GetInt64(9), reader.GetInt64(10),
                reader.GetInt64(13));
            groups.Add(new UsageGroup(
                reader.IsDBNull(0) ? null : reader.GetFieldValue<DateOnly>(0),
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.IsDBNull(2) ? null : reader.GetGuid(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                totals,
                reader.IsDBNull(12) ? null : reader.GetString(12),
                reader.IsDBNull(11) ? null : reader.GetFieldValue<long[]>(11),
                reader.IsDBNull(14) ? null : reader.GetGuid(14),
                reader.IsDBNull(15) ? null : reader.GetString(15)));
            total += totals;
            latency = AddHistograms(latency, groups[^1].Latency);
        }
        return new UsageSummary(groups, total, latency);
    }

    /// <summary>
    /// The month's spend (micro-USD) of every user who spent anything in <paramref name="period"/> (the
    /// first of a UTC month), for the alerts job: the same rollup read as <see cref="SummarizeAsync"/>, for all users.
    /// </summary>
    public async Task<IReadOnlyList<(Guid UserId, long Spend)>> MonthSpendsAsync(DateOnly period, CancellationToken ct)
    {
        var from = StartOfDay(period);
        var to = StartOfDay(period.AddMonths(1));
        await using var command = dataSource.CreateCommand($"""
            select p.user_id, coalesce(sum(p.cost_micros), 0)::bigint from ({RollupSource(oneUser: false, wholeDays: true)}) p group by 1
            """);
        command.Parameters.Add(new() { Value = Guid.Empty });   // $1, unused: every user
        command.Parameters.Add(new() { Value = from });
        command.Parameters.Add(new() { Value = to });
        AddRollupParameters(command, from, to);
        var spends = new List<(Guid, long)>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            spends.Add((reader.GetGuid(0), reader.GetInt64(1)));
        return spends;
    }

    /// <summary>
    /// Every account's revenue and provider cost over whole UTC days <paramref name="first"/> to <paramref name="last"/>
    /// (inclusive), grouped by day, by model and by account in one statement (one snapshot, so the three views add up to
    /// the same totals), from the same rollup read as <see cref="SummarizeAsync"/>. Ordered by day, then by revenue.
    /// </summary>
    public async Task<IReadOnlyList<RevenueGroup>> RevenueAsync(DateOnly first, DateOnly last, CancellationToken ct)
    {
        var from = StartOfDay(first);
        var to = StartOfDay(last.AddDays(1));
        await using var command = dataSource.CreateCommand($"""
            select p.day, p.model_id, p.user_id, coalesce(sum(p.requests), 0)::bigint, coalesce(sum(p.cost_micros), 0)::bigint,
                   coalesce(sum(p.cost_micros) filter (where p.provider_cost_micros is not null), 0)::bigint,
                   coalesce(sum(p.provider_cost_micros), 0)::bigint
            from ({RollupSource(oneUser: false, wholeDays: true)}) p
            group by grouping sets ((p.day), (p.model_id), (p.user_id))
            order by 1 nulls last, 5 desc, 2, 3
            """);
        command.Parameters.Add(new() { Value = Guid.Empty });   // $1, unused: every user
        command.Parameters.Add(new() { Value = from });
        command.Parameters.Add(new() { Value = to });
        AddRollupParameters(command, from, to);
        var groups = new List<RevenueGroup>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            groups.Add(new RevenueGroup(
                reader.IsDBNull(0) ? null : reader.GetFieldValue<DateOnly>(0),
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.IsDBNull(2) ? null : reader.GetGuid(2),
                new RevenueTotals(reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6))));
        return groups;
    }

    /// <summary>The month's spend (micro-USD) of one user; <paramref name="period"/> is the first of a UTC month.</summary>
    public async Task<long> MonthSpendAsync(Guid userId, DateOnly period, CancellationToken ct, Guid? memberId = null) =>
        (await SummarizeAsync(userId, StartOfDay(period), StartOfDay(period.AddMonths(1)), UsageGrouping.Model, ct, memberId: memberId)).Total.CostMicros;

    /// <summary>$4 to $9 of <see cref="RollupSource"/> for a range of a day or longer (so one whole UTC day reads its daily rows).</summary>
    private static void AddRollupParameters(NpgsqlCommand command, DateTimeOffset from, DateTimeOffset to)
    {
        // from <= firstHour <= firstDay <= lastDay <= lastHour <= to, because the range is at least a day long.
        var firstHour = CeilingTo(from, TimeSpan.FromHours(1));
        var lastHour = FloorTo(to, TimeSpan.FromHours(1));
        var firstDay = CeilingTo(from, TimeSpan.FromDays(1));
        var lastDay = FloorTo(to, TimeSpan.FromDays(1));
        command.Parameters.Add(new() { Value = firstHour });
        command.Parameters.Add(new() { Value = lastHour });
        command.Parameters.Add(new() { Value = firstDay });
        command.Parameters.Add(new() { Value = lastDay });
        command.Parameters.Add(new() { Value = DateOnly.FromDateTime(firstDay.UtcDateTime) });
        command.Parameters.Add(new() { Value = DateOnly.FromDateTime(lastDay.UtcDateTime) });
    }

    /// <summary>
    /// $1 user (every user without <paramref name="oneUser"/>), [$2, $3) the range, $4 its first whole hour,
    /// $5 the end of its last whole hour, [$6, $7) its whole days (also as dates, $8 and $9). One statement,
    /// so one snapshot: the watermark and the rows it describes agree.
    /// </summary>
    private static string RollupSource(bool oneUser, bool wholeDays = false)
    {
        var e = oneUser ? "e.user_id = $1" : "true";
        var r = oneUser ? "r.user_id = $1" : "true";
        // A range of whole days has no partial hours or whole hours at its edges. Leaving those parts out matters for
        // every user's usage: without a user id they have no index to use, and would scan every raw event and hour.
        var edges = wholeDays ? "" : $"""
            select {RawRow} from usage_events e
            where {e} and ((e.created_at >= $2 and e.created_at < $4) or (e.created_at >= $5 and e.created_at < $3))
            union all
            select (r.hour at time zone 'UTC')::date, {RollupRow} from usage_rollups_hourly r
            where {r} and ((r.hour >= $4 and r.hour < $6) or (r.hour >= $7 and r.hour < $5))
            union all
            """;
        return $"""
            {edges}
            select {RawRow} from usage_events e
            where e.id > (select last_event_id from usage_rollup_state where id = 1)
              and {e} and e.created_at >= $4 and e.created_at < $5
            union all
            select r.day, {RollupRow} from usage_rollups_daily r
            where {r} and r.day >= $8 and r.day < $9
            """;
    }

    private static long[]? AddHistograms(long[]? a, long[]? b)
    {
        if (a is null) return b;
        if (b is null) return a;
        var sum = new long[Math.Max(a.Length, b.Length)];
        for (var i = 0; i < sum.Length; i++) sum[i] = (i < a.Length ? a[i] : 0) + (i < b.Length ? b[i] : 0);
        return sum;
    }

    private static DateTimeOffset FloorTo(DateTimeOffset at, TimeSpan unit) => new(at.UtcTicks - at.UtcTicks % unit.Ticks, TimeSpan.Zero);

    private static DateTimeOffset CeilingTo(DateTimeOffset at, TimeSpan unit)
    {
        var floor = FloorTo(at, unit);
        return floor == at ? floor : floor + unit;
    }

    /// <summary>Whole UTC days <paramref name="first"/> to <paramref name="last"/> inclusive, grouped.</summary>
    public Task<UsageSummary> SummarizeDaysAsync(Guid userId, DateOnly first, DateOnly last, UsageGrouping grouping, CancellationToken ct,
        Guid? keyId = null, Guid? memberId = null) =>
        SummarizeAsync(userId, StartOfDay(first), StartOfDay(last.AddDays(1)), grouping, ct, keyId, memberId);

    /// <summary>Day groups with a zero group for every day of the range that had no calls (charts and clients want every bucket).</summary>
    public static IReadOnlyList<UsageGroup> FillDays(IReadOnlyList<UsageGroup> days, DateOnly first, DateOnly last)
    {
        var byDay = days.Where(g => g.Day is not null).ToDictionary(g => g.Day!.Value);
        var filled = new List<UsageGroup>(last.DayNumber - first.DayNumber + 1);
        for (var day = first; day <= last; day = day.AddDays(1))
            filled.Add(byDay.GetValueOrDefault(day) ?? new UsageGroup(day, null, null, null, null, default));
        return filled;
    }

    public static DateTimeOffset StartOfDay(DateOnly day) => new(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
}
