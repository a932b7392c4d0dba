using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Keys;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// A key's credit limit counts spend already written to the database, not only what the key cache loaded
/// (issue #11 item 6). One instance: never above the limit. Several instances: above it by at most what the
/// others wrote since this instance last read the key's spend (docs/architecture.md, "Credits and metering").
/// </summary>
public sealed class KeyLimitTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    // The fake provider reports 11 + 100 tokens: 111 micro-USD a call. A call reserves about 134 (its bytes / 3 + 100).
    private const long CallCost = 111;
    private const long Limit = 1_000;

    private static object Body() => CreditsApp.ChatBody(maxTokens: 100);

    private Task<long> SpentAsync(Guid keyOwner) =>
        app.Database.ScalarAsync<long>($"select coalesce(sum(cost_micros), 0)::bigint from usage_events where user_id = '{keyOwner}'");

    [Fact]
    public async Task Flushed_spend_counts_against_the_limit_before_the_key_is_reloaded()
    {
        app.Upstream.Reset();
        app.Upstream.CompletionTokens = 100;
        try
        {
            var (client, _, userId) = await app.CreateApiClientAsync(new KeyLimits(CreditLimitMicros: Limit), creditMicros: 1_000_000);
            var results = new List<HttpStatusCode>();
            for (var i = 0; i < 15; i++)   // well inside the key cache's 15 s: the cached key still says 0 spent
            {
                using var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Body());
                results.Add(response.StatusCode);
                if (response.StatusCode == HttpStatusCode.PaymentRequired)
                {
                    var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
                    Assert.Equal("insufficient_credits", error["code"]!.GetValue<string>());
                    Assert.Contains("credit limit", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
                }
                await app.WaitForUsageAsync();   // written: only the database knows this spend now
            }

            var spent = await SpentAsync(userId);
            Assert.True(spent <= Limit, $"spent {spent} with a limit of {Limit}");
            // Exactly the calls whose worst case fitted: 8 × 111 = 888 spent, and 888 + 134 > 1000.
            Assert.Equal(8, results.Count(s => s == HttpStatusCode.OK));
            Assert.Equal(8, app.Upstream.ChatRequests);
        }
        finally
        {
            app.Upstream.CompletionTokens = 7;
        }
    }

    [Fact]
    public async Task Across_two_instances_the_limit_is_exceeded_by_less_than_one_call()
    {
        app.Upstream.Reset();
        app.Upstream.CompletionTokens = 100;
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 1_000_000);
        var key = await app.IssueKeyAsync(userId, new KeyLimits(CreditLimitMicros: Limit));
        var (child, other) = await app.StartInstanceAsync(key, new() { ["Credits__FlushIntervalMs"] = "50" });
        await using var _ = child;
        using var __ = other;
        try
        {
            using var local = app.CreateClient();
            local.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            var refused = new int[2];
            for (var i = 0; i < 20; i++)
            {
                var instance = i % 2;
                var rowsBefore = await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'");
                using var response = await (instance == 0 ? local : other).PostAsJsonAsync("/api/v1/chat/completions", Body());
                if (response.StatusCode == HttpStatusCode.PaymentRequired) { refused[instance]++; continue; }
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                // Written before the next call, on whichever instance made it.
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == rowsBefore && DateTime.UtcNow < deadline)
                    await Task.Delay(20);
            }

            var spent = await SpentAsync(userId);
            // The documented bound: each instance misses at most what the other wrote since it last read the key's
            // spend (here one call), so the total stays below the limit plus one call.
            Assert.True(spent < Limit + CallCost, $"spent {spent} with a limit of {Limit}");
            Assert.True(refused[0] > 0 && refused[1] > 0, "both instances enforce the limit");
            Assert.Equal(await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"), app.Upstream.ChatRequests);
        }
        finally
        {
            app.Upstream.CompletionTokens = 7;
        }
    }
}
