using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Usage;

/// <summary>
/// Pruning raw usage after the retention: the rollups stay, and <c>GET /api/v1/usage</c> answers the
/// same totals before and after. Its own database, since pruning deletes every account's old rows.
/// </summary>
public sealed class UsagePruneTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    private UsageRollup Rollup => app.Services.GetRequiredService<UsageRollup>();

    private async Task<string> UsageAsync(HttpClient client, string query)
    {
        var response = await client.GetAsync($"/api/v1/usage?{query}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)!.ToJsonString();
    }

    [Fact]
    public async Task Pruning_keeps_rollups_and_api_totals_and_never_drops_an_event_not_yet_rolled_up()
    {
        var user = await app.CreateUserAsync();
        var secret = await app.IssueKeyAsync(user);
        var keyId = await app.Database.ScalarAsync<Guid>($"select id from api_keys where owner_id = '{user}'");
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);

        var rng = new Random(11);
        var rows = UsageData.Generate(rng, [(user, [keyId, Guid.NewGuid()])], 2000, 20, DateTimeOffset.UtcNow);
        await UsageData.InsertAsync(app.Database, rows);
        await Rollup.RunAsync(CancellationToken.None);

        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var queries = new[] { "group_by=day", "group_by=model", "group_by=key", $"start={today.AddDays(-25):yyyy-MM-dd}&group_by=model" };
        var before = new List<string>();
        foreach (var q in queries) before.Add(await UsageAsync(client, q));
        var hourly = await UsageData.DumpAsync(app.Database, "usage_rollups_hourly", "t.user_id, t.hour, t.key_id, t.model_id, t.provider");
        var daily = await UsageData.DumpAsync(app.Database, "usage_rollups_daily", "t.user_id, t.day, t.key_id, t.model_id, t.provider");

        var cutoff = UsageQueries.StartOfDay(today.AddDays(-5));
        var old = rows.Count(r => r.At < cutoff);
        Assert.InRange(old, 1000, 2000);
        Assert.Equal(old, await Rollup.PruneAsync(5, CancellationToken.None));

        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where created_at < '{cutoff:O}'"));
        Assert.Equal(rows.Count - old, await app.Database.ScalarAsync<long>("select count(*) from usage_events"));
        Assert.Equal(hourly, await UsageData.DumpAsync(app.Database, "usage_rollups_hourly", "t.user_id, t.hour, t.key_id, t.model_id, t.provider"));
        Assert.Equal(daily, await UsageData.DumpAsync(app.Database, "usage_rollups_daily", "t.user_id, t.day, t.key_id, t.model_id, t.provider"));
        for (var i = 0; i < queries.Length; i++) Assert.Equal(before[i], await UsageAsync(client, queries[i]));

        // A very late event, dated before the cutoff, arrives after the prune: it is not pruned until
        // rolled up, and then it is added to its (already pruned) hour.
        var lateAt = cutoff.AddDays(-2).AddHours(7).AddMinutes(3);
        await UsageData.InsertAsync(app.Database, [new RawUsage(user, keyId, "test/late", "openai", lateAt, 100, 50, 0, 123_456, 200, 900)]);
        Assert.Equal(0, await Rollup.PruneAsync(5, CancellationToken.None));
        var lateHour = lateAt.AddMinutes(-3);
        var requestsBefore = await app.Database.ScalarAsync<long>(
            $"select coalesce(sum(requests), 0)::bigint from usage_rollups_hourly where user_id = '{user}' and hour = '{lateHour:O}'");

        await Rollup.RunAsync(CancellationToken.None);
        Assert.Equal(requestsBefore + 1, await app.Database.ScalarAsync<long>(
            $"select sum(requests)::bigint from usage_rollups_hourly where user_id = '{user}' and hour = '{lateHour:O}'"));
        var byModel = JsonNode.Parse(await UsageAsync(client, "group_by=model"))!;
        Assert.Equal("0.123456", byModel["data"]!.AsArray().Single(m => m!["model"]!.GetValue<string>() == "test/late")!["cost_usd"]!.GetValue<string>());
        Assert.Equal(1, await Rollup.PruneAsync(5, CancellationToken.None));
    }
}
