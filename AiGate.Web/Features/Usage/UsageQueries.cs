using Npgsql;

namespace AiGate.Web.Features.Usage;

public enum UsageGrouping { Day, Model, Key }

/// <summary>Sums of a set of calls. Money in micro-USD.</summary>
public readonly record struct UsageTotals(long Requests, long PromptTokens, long CompletionTokens, long CachedTokens, long CostMicros, long Errors)
{
    public static UsageTotals operator +(UsageTotals a, UsageTotals b) => new(
        a.Requests + b.Requests, a.PromptTokens + b.PromptTokens, a.CompletionTokens + b.CompletionTokens,
        a.CachedTokens + b.CachedTokens, a.CostMicros + b.CostMicros, a.Errors + b.Errors);
}

/// <summary>
/// One group of a summary. <see cref="Day"/> is set when grouped by day, <see cref="Model"/> by model,
/// <see cref="KeyId"/> (with the key's name and prefix, null when the key no longer exists) by key.
/// </summary>
public sealed record UsageGroup(DateOnly? Day, string? Model, Guid? KeyId, string? KeyName, string? KeyPrefix, UsageTotals Totals);

public sealed record UsageSummary(IReadOnlyList<UsageGroup> Groups, UsageTotals Total);

/// <summary>
/// Every aggregate over a user's usage (the /api/v1/usage endpoint, the dashboard's month and chart)
/// goes through <see cref="SummarizeAsync"/>: one grouped statement over <c>usage_events</c>, always
/// filtered by owner, reading the <c>(user_id, created_at)</c> index. When the jobs issue adds usage
/// rollups, long ranges switch to them here (whole UTC days from the rollup, the open edges from raw
/// events) and no caller changes.
/// </summary>
public sealed class UsageQueries(NpgsqlDataSource dataSource)
{
    /// <summary>The longest range one summary may cover (days, inclusive).</summary>
    public const int MaxDays = 366;

    /// <summary>
    /// Usage of <paramref name="userId"/> from <paramref name="from"/> (inclusive) to <paramref name="to"/>
    /// (exclusive), grouped. Groups come ordered (day ascending; model and key by cost, highest first).
    /// Days without calls are not returned (see <see cref="FillDays"/>).
    /// </summary>
    public async Task<UsageSummary> SummarizeAsync(Guid userId, DateTimeOffset from, DateTimeOffset to, UsageGrouping grouping, CancellationToken ct)
    {
        // The grouping expressions are constants chosen by the enum, never input; the values are parameters.
        var (select, groupBy, orderBy) = grouping switch
        {
            UsageGrouping.Day => ("(e.created_at at time zone 'UTC')::date, null::text, null::uuid, null::text, null::text",
                "1", "1"),
            UsageGrouping.Model => ("null::date, e.model_id, null::uuid, null::text, null::text", "2", "10 desc, 2"),
            UsageGrouping.Key => ("null::date, null::text, e.key_id, min(k.name), min(k.prefix)", "3", "10 desc, 4, 3"),
            _ => throw new ArgumentOutOfRangeException(nameof(grouping)),
        };
        // The key join is owner-filtered too: a key of another user never lends its name, whatever usage_events says.
        var join = grouping == UsageGrouping.Key ? "left join api_keys k on k.id = e.key_id and k.owner_id = e.user_id" : "";
        await using var command = dataSource.CreateCommand($"""
            select {select},
                   count(*), coalesce(sum(e.prompt_tokens), 0)::bigint, coalesce(sum(e.completion_tokens), 0)::bigint,
                   coalesce(sum(e.cached_tokens), 0)::bigint, coalesce(sum(e.cost_micros), 0)::bigint,
                   count(*) filter (where e.status >= 400)
            from usage_events e {join}
            where e.user_id = $1 and e.created_at >= $2 and e.created_at < $3
            group by {groupBy}
            order by {orderBy}
            """);
        command.Parameters.Add(new() { Value = userId });
        command.Parameters.Add(new() { Value = from.ToUniversalTime() });
        command.Parameters.Add(new() { Value = to.ToUniversalTime() });

        var groups = new List<UsageGroup>();
        var total = default(UsageTotals);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var totals = new UsageTotals(reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8), reader.GetInt64(9), reader.GetInt64(10));
            groups.Add(new UsageGroup(
                reader.IsDBNull(0) ? null : reader.GetFieldValue<DateOnly>(0),
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.IsDBNull(2) ? null : reader.GetGuid(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                totals));
            total += totals;
        }
        return new UsageSummary(groups, total);
    }

    /// <summary>Whole UTC days <paramref name="first"/> to <paramref name="last"/> inclusive, grouped.</summary>
    public Task<UsageSummary> SummarizeDaysAsync(Guid userId, DateOnly first, DateOnly last, UsageGrouping grouping, CancellationToken ct) =>
        SummarizeAsync(userId, StartOfDay(first), StartOfDay(last.AddDays(1)), grouping, ct);

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
