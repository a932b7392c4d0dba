using AiGate.Web.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using NpgsqlTypes;

namespace AiGate.Web.Tests.Features.Usage;

/// <summary>One raw usage row as a test writes it, and the totals a summary should report for a set of them.</summary>
public sealed record RawUsage(Guid UserId, Guid KeyId, string Model, string Provider, DateTimeOffset At, long Prompt, long Completion,
    long Cached, long Cost, int Status, int LatencyMs, string? RequestId = null, bool Estimated = false);

/// <summary>Random usage written straight to <c>usage_events</c> (as <c>UsageWriter</c> would), from a seeded RNG.</summary>
public static class UsageData
{
    public static readonly string[] Models = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "google/gemini-2.5-flash", "echo/echo-1", "test/x"];
    public static readonly string[] Providers = ["openai", "anthropic", "gemini"];

    /// <summary>
    /// <paramref name="count"/> events for the given users and keys, spread over the <paramref name="days"/>
    /// UTC days before now (at random hours, minutes and seconds), with random tokens, costs, errors and latencies.
    /// </summary>
    public static List<RawUsage> Generate(Random rng, IReadOnlyList<(Guid User, Guid[] Keys)> accounts, int count, int days, DateTimeOffset now)
    {
        var rows = new List<RawUsage>(count);
        for (var i = 0; i < count; i++)
        {
            var (user, keys) = accounts[rng.Next(accounts.Count)];
            var at = now.AddSeconds(-rng.NextDouble() * days * 86_400);
            var prompt = rng.Next(0, 5000);
            rows.Add(new RawUsage(user, keys[rng.Next(keys.Length)], Models[rng.Next(Models.Length)], Providers[rng.Next(Providers.Length)],
                new DateTimeOffset(at.UtcTicks - at.UtcTicks % 10, TimeSpan.Zero),   // PostgreSQL keeps microseconds
                prompt, rng.Next(0, 2000), rng.Next(0, prompt + 1), rng.Next(0, 50_000),
                rng.Next(10) == 0 ? (rng.Next(2) == 0 ? 502 : 429) : 200, rng.Next(20, 30_000)));
        }
        return rows;
    }

    public static async Task InsertAsync(TestDatabase database, IReadOnlyList<RawUsage> rows)
    {
        await using var dataSource = database.CreateDataSource();
        await using var command = dataSource.CreateCommand("""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, estimated, streamed, status, latency_ms, created_at)
            select coalesce(request_id, 'req-' || gen_random_uuid()), user_id, key_id, model_id, provider, prompt_tokens, completion_tokens,
                   cached_tokens, cost_micros, estimated, false, status, latency_ms, created_at
            from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::int8[],
                        $9::int4[], $10::int4[], $11::timestamptz[], $12::text[], $13::bool[])
                 as t(user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens, cost_micros, status, latency_ms, created_at,
                      request_id, estimated)
            """);
        var p = command.Parameters;
        p.Add(new() { Value = rows.Select(r => r.UserId).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.KeyId).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.Model).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.Provider).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.Prompt).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.Completion).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.Cached).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.Cost).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.Status).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.LatencyMs).ToArray() });
        p.Add(new() { Value = rows.Select(r => r.At).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        p.Add(new() { Value = rows.Select(r => r.RequestId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        p.Add(new() { Value = rows.Select(r => r.Estimated).ToArray() });
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The summary computed in memory from the rows themselves: what <see cref="UsageQueries.SummarizeAsync"/> must return.</summary>
    public static Dictionary<string, UsageTotals> Expected(IEnumerable<RawUsage> rows, Guid user, DateTimeOffset from, DateTimeOffset to, UsageGrouping grouping) =>
        rows.Where(r => r.UserId == user && r.At >= from && r.At < to)
            .GroupBy(r => grouping switch
            {
                UsageGrouping.Day => DateOnly.FromDateTime(r.At.UtcDateTime).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
                UsageGrouping.Model => r.Model,
                _ => r.KeyId.ToString(),
            })
            .ToDictionary(g => g.Key, g => g.Aggregate(default(UsageTotals), (t, r) =>
                t + new UsageTotals(1, r.Prompt, r.Completion, r.Cached, r.Cost, r.Status >= 400 ? 1 : 0)));

    public static Dictionary<string, UsageTotals> Actual(UsageSummary summary, UsageGrouping grouping) =>
        summary.Groups.ToDictionary(g => grouping switch
        {
            UsageGrouping.Day => g.Day!.Value.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            UsageGrouping.Model => g.Model!,
            _ => g.KeyId!.Value.ToString(),
        }, g => g.Totals);

    public static async Task<string> DumpAsync(TestDatabase database, string table, string order) =>
        await database.ScalarAsync<string>($"select coalesce(string_agg(t::text, E'\\n' order by {order}), '') from {table} t") ?? "";
}
