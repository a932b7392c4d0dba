using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Usage;

/// <summary>
/// The Activity page, the request log, a request's detail and the CSV exports through HTTP, against random raw usage
/// rows (seeded, so a failure repeats) compared with aggregates computed here from the rows themselves. The CSV export's
/// memory test reads the process's live heap, so the class runs <see cref="Alone"/>.
/// </summary>
[Collection(Alone.Name)]
public sealed partial class ActivityTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    private static DateOnly Today => DateOnly.FromDateTime(DateTime.UtcNow);

    private async Task<Guid[]> KeysAsync(Guid userId, int count)
    {
        for (var i = 0; i < count; i++) await app.IssueKeyAsync(userId);
        var ids = await app.Database.ScalarAsync<Guid[]>($"select array_agg(id order by created_at) from api_keys where owner_id = '{userId}'");
        return ids!;
    }

    private HttpClient ApiClient(string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>Each row of the chart's table: its group label and the raw numbers of its cells.</summary>
    private static Dictionary<string, long[]> Table(string html, string chart)
    {
        var start = html.IndexOf($"data-testid=\"table-{chart}\"", StringComparison.Ordinal);
        Assert.True(start >= 0, $"no table {chart}");
        var table = html[start..html.IndexOf("</table>", start, StringComparison.Ordinal)];
        var rows = new Dictionary<string, long[]>();
        foreach (Match row in TableRow().Matches(table))
        {
            var label = WebUtility.HtmlDecode(GroupLabel().Match(row.Value).Groups[1].Value);
            rows.Add(label, [.. CellValue().Matches(row.Value).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))]);
        }
        return rows;
    }

    /// <summary>
    /// The nearest-rank percentile of the raw latencies themselves (sorted, the ceil(p·n)-th), shown as the upper bound of
    /// the bucket it falls in (the last bound for the open last bucket): computed here without the app's histogram code.
    /// </summary>
    private static long ExpectedPercentile(IEnumerable<int> latencies, double p)
    {
        var sorted = latencies.Order().ToArray();
        var value = sorted[(int)Math.Ceiling(p * sorted.Length) - 1];
        return LatencyHistogram.Bounds.FirstOrDefault(bound => value < bound, LatencyHistogram.Bounds[^1]);
    }

    [Fact]
    public async Task Activity_numbers_equal_direct_aggregates_of_random_raw_rows_and_the_api_for_every_grouping()
    {
        var rng = new Random(20261204);
        var (userId, session) = await app.SignedInAsync("activity");
        var (otherId, _) = await app.SignedInAsync("activity");
        var keys = await KeysAsync(userId, 3);
        var otherKeys = await KeysAsync(otherId, 1);
        var now = DateTimeOffset.UtcNow;
        var rows = UsageData.Generate(rng, [(userId, keys), (otherId, otherKeys)], 4000, 20, now);
        // And some today whatever the hour: minutes after midnight UTC, the 20 days above may have none today (CI ran into it).
        var midnight = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        rows.AddRange(UsageData.Generate(rng, [(userId, keys)], 30, 1, now)
            .Select(r => r with { At = new DateTimeOffset(midnight.UtcTicks + (long)((now - midnight).Ticks * rng.NextDouble()) / 10 * 10, TimeSpan.Zero) }));
        await UsageData.InsertAsync(app.Database, rows);
        await app.Services.GetRequiredService<UsageRollup>().RunAsync(CancellationToken.None);
        // Some rows the rollup has not reached yet: the page adds them from raw events, as the API does.
        var late = UsageData.Generate(rng, [(userId, keys), (otherId, otherKeys)], 300, 20, now);
        await UsageData.InsertAsync(app.Database, late);
        rows.AddRange(late);

        var secret = await app.IssueKeyAsync(userId);
        using var api = ApiClient(secret);
        var names = new Dictionary<Guid, string>();
        foreach (var key in keys)
            names[key] = $"test key ({await app.Database.ScalarAsync<string>($"select prefix from api_keys where id = '{key}'")}…)";

        foreach (var (period, first) in new[] { ("custom", Today.AddDays(-13)), ("today", Today), ("7d", Today.AddDays(-6)) })
        {
            var mine = rows.Where(r => r.UserId == userId && DateOnly.FromDateTime(r.At.UtcDateTime) >= first).ToList();
            foreach (var group in new[] { "model", "key", "provider", "day" })
            {
                Func<RawUsage, string> by = group switch
                {
                    "model" => r => r.Model,
                    "key" => r => names[r.KeyId],
                    "provider" => r => r.Provider,
                    _ => r => Day(DateOnly.FromDateTime(r.At.UtcDateTime)),
                };
                var expected = mine.GroupBy(by).ToDictionary(g => g.Key, g => g.ToList());
                var html = await session.TextAsync($"/activity?period={period}&from={Day(first)}&to={Day(Today)}&group={group}");
                var spend = Table(html, "spend");
                var requests = Table(html, "requests");
                var tokens = Table(html, "tokens");
                var errors = Table(html, "errors");
                var latency = Table(html, "latency");
                // Grouped by day, every day of the period has a row (zeros for a day without calls).
                var expectedGroups = group == "day" ? Today.DayNumber - first.DayNumber + 1 : expected.Count;
                Assert.Equal(expectedGroups, spend.Count);
                foreach (var (label, calls) in expected)
                {
                    var context = $"{period} {group} {label}";
                    Assert.True(spend.ContainsKey(label), $"{context}: no row");
                    Assert.Equal(calls.Sum(c => c.Cost), spend[label][0]);
                    Assert.Equal(calls.Count, requests[label][0]);
                    Assert.Equal([calls.Sum(c => c.Prompt), calls.Sum(c => c.Cached), calls.Sum(c => c.Completion)], tokens[label]);
                    Assert.Equal(calls.Count(c => c.Status >= 400), errors[label][0]);
                    Assert.Equal([ExpectedPercentile(calls.Select(c => c.LatencyMs), 0.5), ExpectedPercentile(calls.Select(c => c.LatencyMs), 0.95)],
                        latency[label]);
                }
                Assert.DoesNotContain("style=", html, StringComparison.Ordinal);

                // The API's JSON for the same period and grouping has the same numbers.
                var json = JsonNode.Parse(await api.GetStringAsync($"/api/v1/usage?start={Day(first)}&end={Day(Today)}&group_by={group}"))!;
                Assert.Equal(mine.Sum(r => r.Cost) / 1_000_000m, decimal.Parse((string)json["total"]!["cost_usd"]!, CultureInfo.InvariantCulture));
                Assert.Equal(mine.Count, (long)json["total"]!["requests"]!);
                foreach (var item in json["data"]!.AsArray())
                {
                    var label = group switch
                    {
                        "model" => (string)item!["model"]!,
                        "key" => $"{(string)item!["key_name"]!} ({(string)item["key_prefix"]!}…)",
                        "provider" => (string)item!["provider"]!,
                        _ => (string)item!["day"]!,
                    };
                    Assert.Equal(spend[label][0], (long)(decimal.Parse((string)item["cost_usd"]!, CultureInfo.InvariantCulture) * 1_000_000m));
                    Assert.Equal(requests[label][0], (long)item["requests"]!);
                    Assert.Equal(errors[label][0], (long)item["errors"]!);
                }
            }
        }
    }

    [Fact]
    public async Task Csv_exports_equal_the_api_the_page_and_each_other_with_proper_escaping()
    {
        var rng = new Random(418);
        var (userId, session) = await app.SignedInAsync("csv");
        var (otherId, _) = await app.SignedInAsync("csv");
        var keys = await KeysAsync(userId, 2);
        await app.Database.ExecuteAsync($"update api_keys set name = 'Team \"A\", prod' where id = '{keys[0]}'");
        var rows = UsageData.Generate(rng, [(userId, keys), (otherId, await KeysAsync(otherId, 1))], 700, 6, DateTimeOffset.UtcNow);
        await UsageData.InsertAsync(app.Database, rows);
        await app.Services.GetRequiredService<UsageRollup>().RunAsync(CancellationToken.None);
        var mine = rows.Where(r => r.UserId == userId).ToList();
        var first = Today.AddDays(-6);
        using var api = ApiClient(await app.IssueKeyAsync(userId));

        var response = await api.GetAsync($"/api/v1/usage?start={Day(first)}&end={Day(Today)}&format=csv");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        var apiCsv = ParseCsv(await response.Content.ReadAsStringAsync());
        Assert.Equal(UsageCsv.RequestColumns, apiCsv[0]);
        var apiRows = apiCsv.Skip(1).ToList();
        var col = (string name) => Array.IndexOf(UsageCsv.RequestColumns, name);
        Assert.Equal(mine.Count, apiRows.Count);
        Assert.Equal(mine.Sum(r => r.Cost), apiRows.Sum(r => long.Parse(r[col("cost_micros")], CultureInfo.InvariantCulture)));
        Assert.Equal(mine.Sum(r => r.Cost) / 1_000_000m, apiRows.Sum(r => decimal.Parse(r[col("cost_usd")], CultureInfo.InvariantCulture)));
        Assert.Contains(apiRows, r => r[col("key_name")] == "Team \"A\", prod");   // quoted and unquoted back
        var json = JsonNode.Parse(await api.GetStringAsync($"/api/v1/usage?start={Day(first)}&end={Day(Today)}"))!;
        Assert.Equal((long)json["total"]!["requests"]!, apiRows.Count);

        // The request log's CSV (no filters, same days) holds the same rows, newest first, as the log's pages do.
        var logCsv = ParseCsv(await session.TextAsync($"/activity/requests?handler=csv&from={Day(first)}&to={Day(Today)}"));
        Assert.Equal(apiCsv, logCsv);
        var paged = await WalkLogAsync(session, $"/activity/requests?from={Day(first)}&to={Day(Today)}");
        Assert.Equal(logCsv.Skip(1).Select(r => r[col("request_id")]), paged);

        // A filter narrows the CSV as it does the page.
        var failedCsv = ParseCsv(await session.TextAsync($"/activity/requests?handler=csv&from={Day(first)}&to={Day(Today)}&status=error"));
        Assert.Equal(mine.Count(r => r.Status >= 400), failedCsv.Count - 1);
        Assert.All(failedCsv.Skip(1), r => Assert.True(int.Parse(r[col("status")], CultureInfo.InvariantCulture) >= 400));

        // Daily totals: one row per day of the period, equal to the API grouped by day and to the page's day table.
        var days = ParseCsv(await session.TextAsync($"/activity?handler=csv&period=custom&from={Day(first)}&to={Day(Today)}"));
        Assert.Equal(UsageCsv.DayColumns, days[0]);
        var byDay = JsonNode.Parse(await api.GetStringAsync($"/api/v1/usage?start={Day(first)}&end={Day(Today)}&group_by=day"))!["data"]!.AsArray();
        Assert.Equal(byDay.Count, days.Count - 1);
        var page = Table(await session.TextAsync($"/activity?period=custom&from={Day(first)}&to={Day(Today)}&group=day"), "spend");
        for (var i = 0; i < byDay.Count; i++)
        {
            Assert.Equal((string)byDay[i]!["day"]!, days[i + 1][0]);
            Assert.Equal((string)byDay[i]!["cost_usd"]!, days[i + 1][5]);
            Assert.Equal((long)byDay[i]!["requests"]!, long.Parse(days[i + 1][1], CultureInfo.InvariantCulture));
            Assert.Equal(page[days[i + 1][0]][0], long.Parse(days[i + 1][6], CultureInfo.InvariantCulture));
        }
        Assert.Equal(400, (int)(await api.GetAsync("/api/v1/usage?format=xml")).StatusCode);
    }

    /// <summary>Follows the log's "Older" links to the end and returns every request id shown, in order.</summary>
    private static async Task<List<string>> WalkLogAsync(WebSession session, string url)
    {
        var ids = new List<string>();
        for (var pages = 0; url is not null; pages++)
        {
            Assert.True(pages < 1000, "paging does not end");
            var html = await session.TextAsync(url);
            var onPage = LogRow().Matches(html).Select(m => WebUtility.HtmlDecode(m.Groups[1].Value)).ToList();
            Assert.True(onPage.Count <= RequestLog.PageSize);
            ids.AddRange(onPage);
            var older = OlderLink().Match(html);
            url = older.Success ? WebUtility.HtmlDecode(older.Groups[1].Value) : null!;
        }
        return ids;
    }

    [Fact]
    public async Task Keyset_paging_returns_every_row_exactly_once_even_when_many_share_a_timestamp()
    {
        var (userId, session) = await app.SignedInAsync("paging");
        var key = (await KeysAsync(userId, 1))[0];
        var now = DateTimeOffset.UtcNow;
        var at = new DateTimeOffset(now.UtcTicks - now.UtcTicks % 10, TimeSpan.Zero);
        // 237 rows on 9 timestamps: pages end in the middle of a run of equal times, which only the id can break.
        var rows = Enumerable.Range(0, 237).Select(i => new RawUsage(userId, key, i % 3 == 0 ? "m/a" : "m/b", "p", at.AddSeconds(-(i % 9)), 10, 5, 0, 7,
            i % 7 == 0 ? 429 : 200, 100, $"req-page-{i:D3}")).ToList();
        await UsageData.InsertAsync(app.Database, rows);
        await app.Database.ExecuteAsync($"update usage_events set streamed = true where user_id = '{userId}' and request_id like '%5'");

        var all = await WalkLogAsync(session, "/activity/requests");
        Assert.Equal(237, all.Count);
        Assert.Equal(rows.Select(r => r.RequestId!).Order(), all.Order());
        var times = rows.ToDictionary(r => r.RequestId!, r => r.At);
        for (var i = 1; i < all.Count; i++) Assert.True(times[all[i - 1]] >= times[all[i]], "newest first");

        Assert.Equal(rows.Count(r => r.Model == "m/a" && r.Status >= 400), (await WalkLogAsync(session, "/activity/requests?model=m/a&status=error")).Count);
        Assert.Equal(rows.Count(r => r.Status == 429), (await WalkLogAsync(session, "/activity/requests?status=429")).Count);
        Assert.Equal(rows.Count(r => r.RequestId!.EndsWith('5')), (await WalkLogAsync(session, "/activity/requests?streamed=yes")).Count);
        Assert.Equal(["req-page-042"], await WalkLogAsync(session, "/activity/requests?q=req-page-042"));
        Assert.Empty(await WalkLogAsync(session, $"/activity/requests?from={Day(Today.AddDays(-9))}&to={Day(Today.AddDays(-2))}"));
    }

    [Fact]
    public async Task A_request_detail_explains_its_cost_and_another_accounts_request_is_404()
    {
        var (userId, session) = await app.SignedInAsync("detail");
        var (otherId, otherSession) = await app.SignedInAsync("detail");
        var model = $"test/priced-{Guid.NewGuid():N}"[..30];
        // $2.50 in, $1.25 cached, $10 out per 1M tokens, margin 1.8.
        await app.Database.InsertTwoRouteModelAsync(model, "Priced", 2_500_000, 10_000_000, 1_250_000, 18_000);
        await app.Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
        var pricing = new ModelPricing(2_500_000, 10_000_000, 1_250_000, 18_000);
        var usage = new TokenUsage(12_000, 3_456, 2_000);
        var cost = pricing.CostMicros(usage);
        var mine = $"req-detail-{Guid.NewGuid():N}";
        var theirs = $"req-theirs-{Guid.NewGuid():N}";
        await UsageData.InsertAsync(app.Database, [
            new RawUsage(userId, Guid.NewGuid(), model, "primary", DateTimeOffset.UtcNow, 12_000, 3_456, 2_000, cost, 200, 1_234, mine, Estimated: true),
            new RawUsage(otherId, Guid.NewGuid(), model, "primary", DateTimeOffset.UtcNow, 1, 1, 0, 1, 502, 10, theirs)]);

        var response = await session.GetAsync($"/activity/requests/{mine}");
        var html = WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // (10,000 × 2,500,000 + 2,000 × 1,250,000 + 3,456 × 10,000,000) ÷ 1M = 62,060 list; × 1.8 = 111,708 micro-USD.
        Assert.Equal(111_708, cost);
        Assert.Contains("(10,000 × 2,500,000 + 2,000 × 1,250,000 + 3,456 × 10,000,000) ÷ 1,000,000 = 62,060 micro-USD at list prices", html, StringComparison.Ordinal);
        Assert.Contains("× 1.8 margin = 111,708 micro-USD = $0.111708", html, StringComparison.Ordinal);
        Assert.Contains("primary → up-model-a", html, StringComparison.Ordinal);
        Assert.Contains("AiGate (estimated", html, StringComparison.Ordinal);
        Assert.Contains("1,234 ms", html, StringComparison.Ordinal);
        Assert.DoesNotContain("data-testid=\"detail-price-changed\"", html, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NotFound, (await session.GetAsync($"/activity/requests/{theirs}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherSession.GetAsync($"/activity/requests/{mine}")).StatusCode);
        Assert.Empty(await WalkLogAsync(session, $"/activity/requests?q={theirs}"));
        Assert.DoesNotContain(theirs, await session.TextAsync($"/activity/requests?handler=csv"), StringComparison.Ordinal);
        Assert.DoesNotContain(mine, await otherSession.TextAsync("/activity/requests"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_csv_export_streams_200k_rows_while_the_query_still_runs_with_bounded_memory()
    {
        const int Rows = 200_000;
        var userId = await app.CreateUserAsync();
        var key = (await KeysAsync(userId, 1))[0];
        // 200,000 calls, one every 100 ms back from now: about five and a half hours, so within today and yesterday.
        await app.Database.ExecuteAsync($"""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, estimated, streamed, status, latency_ms, created_at)
            select 'bulk-' || i, '{userId}', '{key}', 'bulk/model-' || (i % 7), 'bulkprovider', 1000 + i % 500, 200 + i % 300, i % 100,
                   2000 + i % 1000, i % 50 = 0, i % 2 = 0, case when i % 40 = 0 then 502 else 200 end, 100 + i % 5000,
                   now() - i * interval '100 milliseconds'
            from generate_series(1, {Rows}) i
            """);
        using var api = ApiClient(await app.IssueKeyAsync(userId));
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        using var response = await api.GetAsync($"/api/v1/usage?start={Day(Today.AddDays(-1))}&end={Day(Today)}&format=csv",
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var body = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[64 * 1024];
        long read = 0, lines = 0, peak = 0, nextSample = 0;
        async Task<int> ReadAsync()
        {
            var n = await body.ReadAsync(buffer);
            for (var i = 0; i < n; i++) if (buffer[i] == (byte)'\n') lines++;
            read += n;
            return n;
        }
        while (read < 256 * 1024) Assert.True(await ReadAsync() > 0, "the export ended early");

        // The first rows are here while PostgreSQL is still sending the rest: a buffered export would have finished its query by now.
        var running = await app.Database.ScalarAsync<long>("""
            select count(*) from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid() and state = 'active' and query like '%from usage_events e left join api_keys k%'
            """);
        Assert.Equal(1, running);

        while (await ReadAsync() > 0)
        {
            if (read < nextSample) continue;
            peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true) - baseline);
            nextSample = read + 4 * 1024 * 1024;
        }
        Assert.Equal(Rows + 1, lines);   // the header and one line per call
        Assert.True(read > 20_000_000, $"only {read} bytes");
        // The whole export is ~25 MB of text and 200,000 rows of objects; streaming keeps a few buffers of it alive at a time.
        Assert.True(peak < 16 * 1024 * 1024, $"the live heap grew by {peak / 1024 / 1024} MB while the export was read");
    }

    [Fact]
    public async Task A_restricted_keys_csv_holds_only_its_own_calls()
    {
        var userId = await app.CreateUserAsync();
        var secret = await app.IssueKeyAsync(userId, new AiGate.Web.Features.Keys.KeyLimits(CreditLimitMicros: 1_000_000));
        var restricted = await app.Database.ScalarAsync<Guid>($"select id from api_keys where owner_id = '{userId}'");
        var other = (await KeysAsync(userId, 1)).Single(k => k != restricted);
        await UsageData.InsertAsync(app.Database, [
            new RawUsage(userId, restricted, "m/own", "p", DateTimeOffset.UtcNow.AddMinutes(-1), 1, 1, 0, 5, 200, 10, $"req-own-{Guid.NewGuid():N}"),
            new RawUsage(userId, other, "m/secret", "p", DateTimeOffset.UtcNow.AddMinutes(-1), 1, 1, 0, 5, 200, 10, $"req-other-{Guid.NewGuid():N}")]);
        using var api = ApiClient(secret);

        var csv = ParseCsv(await api.GetStringAsync("/api/v1/usage?format=csv"));

        Assert.Equal(2, csv.Count);
        Assert.Equal("m/own", csv[1][Array.IndexOf(UsageCsv.RequestColumns, "model")]);
    }

    [Fact]
    public async Task Bad_periods_filters_and_cursors_get_a_clear_answer_never_a_500()
    {
        var (_, session) = await app.SignedInAsync("bad");
        foreach (var url in new[]
                 {
                     "/activity?period=custom&from=2026-12-04&to=2026-01-01", "/activity?period=custom&from=1999-01-01&to=2000-01-05",
                     "/activity?period=custom&from=2024-01-01&to=2026-01-01", "/activity?period=custom&from=9999-12-31&to=9999-12-31",
                 })
        {
            var response = await session.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("data-testid=\"period-error\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.BadRequest, (await session.GetAsync(url + "&handler=csv")).StatusCode);
        }
        foreach (var url in new[]
                 {
                     "/activity?period=nonsense&group=nonsense", "/activity?period=custom&from=yesterday", "/activity/requests?after=garbage",
                     "/activity/requests?after=99999999999999999999-1", "/activity/requests?status=abc&streamed=maybe&key=not-a-guid",
                     "/activity/requests?q=%27%3B%20drop%20table%20usage_events%3B--", "/activity/requests?from=9999-12-31&to=9999-12-31",
                 })
            Assert.Equal(HttpStatusCode.OK, (await session.GetAsync(url)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await session.GetAsync("/activity/requests/no-such-request")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await session.GetAsync("/activity/requests?handler=csv&from=2026-02-01&to=2026-01-01")).StatusCode);
        using var anonymous = app.CreateBrowserlessClient();
        Assert.NotEqual(HttpStatusCode.OK, (await anonymous.GetAsync("/activity")).StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, (await anonymous.GetAsync("/activity/requests?handler=csv")).StatusCode);
    }

    [Fact]
    public async Task Migration_0024_backfills_the_latency_histograms_the_rollup_writes_and_leaves_pruned_hours_unknown()
    {
        var rng = new Random(24);
        var userId = await app.CreateUserAsync();
        var rows = UsageData.Generate(rng, [(userId, [Guid.NewGuid(), Guid.NewGuid()])], 600, 4, DateTimeOffset.UtcNow);
        await UsageData.InsertAsync(app.Database, rows);
        await app.Services.GetRequiredService<UsageRollup>().RunAsync(CancellationToken.None);
        const string Hours = "select coalesce(string_agg(concat_ws('|', hour, key_id, model_id, provider, coalesce(latency_histogram::text, 'null')), ',' order by hour, key_id, model_id, provider), '') from usage_rollups_hourly where user_id = ";
        const string Days = "select coalesce(string_agg(concat_ws('|', day, key_id, model_id, provider, coalesce(latency_histogram::text, 'null')), ',' order by day, key_id, model_id, provider), '') from usage_rollups_daily where user_id = ";
        var hours = await app.Database.ScalarAsync<string>($"{Hours}'{userId}'");
        var days = await app.Database.ScalarAsync<string>($"{Days}'{userId}'");
        Assert.DoesNotContain("null", hours, StringComparison.Ordinal);
        // Each hour's histogram counts its calls by bucket, as computed here from the raw rows.
        var expected = rows.GroupBy(r => (Hour: new DateTimeOffset(r.At.UtcTicks - r.At.UtcTicks % TimeSpan.TicksPerHour, TimeSpan.Zero), r.KeyId, r.Model, r.Provider))
            .ToDictionary(g => g.Key, g => g.Aggregate(new long[LatencyHistogram.Bounds.Length + 1], (h, r) =>
            {
                h[LatencyHistogram.Bounds.Count(bound => r.LatencyMs >= bound)]++;
                return h;
            }));
        await using (var dataSource = app.Database.CreateDataSource())
        await using (var command = dataSource.CreateCommand("select hour, key_id, model_id, provider, latency_histogram from usage_rollups_hourly where user_id = $1"))
        {
            command.Parameters.Add(new() { Value = userId });
            await using var reader = await command.ExecuteReaderAsync();
            var seen = 0;
            while (await reader.ReadAsync())
            {
                Assert.Equal(expected[(reader.GetFieldValue<DateTimeOffset>(0), reader.GetGuid(1), reader.GetString(2), reader.GetString(3))], reader.GetFieldValue<long[]>(4));
                seen++;
            }
            Assert.Equal(expected.Count, seen);
        }

        // As before the migration: no histograms. Its backfill gives back exactly what the rollup wrote.
        var migration = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "AiGate.Web", "Data", "Migrations", "0024_usage_latency_histograms.sql"));
        var backfill = migration[migration.IndexOf("-- Backfill", StringComparison.Ordinal)..];
        await app.Database.ExecuteAsync($"update usage_rollups_hourly set latency_histogram = null where user_id = '{userId}'; " +
                                        $"update usage_rollups_daily set latency_histogram = null where user_id = '{userId}'");
        await app.Database.ExecuteAsync(backfill);
        Assert.Equal(hours, await app.Database.ScalarAsync<string>($"{Hours}'{userId}'"));
        Assert.Equal(days, await app.Database.ScalarAsync<string>($"{Days}'{userId}'"));

        // Hours whose raw events were pruned before the migration (pruning cuts at a day boundary) stay unknown, and so do their days.
        var cutoff = UsageQueries.StartOfDay(Today.AddDays(-2));
        var keptFrom = await app.Database.ScalarAsync<string>("select raw_kept_from::text from usage_rollup_state where id = 1");
        await app.Database.ExecuteAsync($"update usage_rollups_hourly set latency_histogram = null where user_id = '{userId}'; " +
                                        $"update usage_rollups_daily set latency_histogram = null where user_id = '{userId}'; " +
                                        $"update usage_rollup_state set raw_kept_from = '{cutoff:O}' where id = 1");
        try
        {
            await app.Database.ExecuteAsync(backfill);
        }
        finally
        {
            await app.Database.ExecuteAsync($"update usage_rollup_state set raw_kept_from = '{keptFrom}' where id = 1");
        }
        Assert.Equal(0, await app.Database.ScalarAsync<long>(
            $"select count(*) from usage_rollups_hourly where user_id = '{userId}' and (latency_histogram is null) <> (hour < '{cutoff:O}')"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>(
            $"select count(*) from usage_rollups_daily where user_id = '{userId}' and (latency_histogram is null) <> (day < '{cutoff.UtcDateTime:yyyy-MM-dd}')"));
    }

    /// <summary>RFC 4180: quoted fields may hold commas, doubled quotes and line breaks; rows end in CRLF.</summary>
    public static List<string[]> ParseCsv(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add([.. row]);
                row.Clear();
                i++;
            }
            else field.Append(c);
        }
        Assert.True(field.Length == 0 && row.Count == 0, "the last row does not end in CRLF");
        return rows;
    }

    [GeneratedRegex("<tr data-testid=\"row\">.*?</tr>", RegexOptions.Singleline)]
    private static partial Regex TableRow();

    [GeneratedRegex("data-group=\"([^\"]*)\"")]
    private static partial Regex GroupLabel();

    [GeneratedRegex("data-value=\"(-?\\d+)\"")]
    private static partial Regex CellValue();

    [GeneratedRegex("data-testid=\"log-row\" data-request-id=\"([^\"]*)\"")]
    private static partial Regex LogRow();

    [GeneratedRegex("<a (?=[^>]*data-testid=\"older\")[^>]*href=\"([^\"]*)\"")]
    private static partial Regex OlderLink();
}
