using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Usage;
using AiGate.Web.Tests.Pages.Admin;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>Every usage row carries the provider's list cost beside our charge, and the rollups sum it.</summary>
public sealed class ProviderCostTests(BusinessApp app) : IClassFixture<BusinessApp>
{
    /// <summary>Tokens × list prices (micro-USD per million tokens), exactly, in micro-USD.</summary>
    private static decimal ExactList(long prompt, long cached, long completion, long input, long cachedInput, long output) =>
        ((prompt - cached) * (decimal)input + cached * (decimal)cachedInput + completion * (decimal)output) / 1_000_000m;

    [Theory]
    [InlineData(BusinessApp.Gpt, 0, 2_500_000, 1_250_000, 10_000_000, 18_000)]
    [InlineData(BusinessApp.Gpt, 5, 2_500_000, 1_250_000, 10_000_000, 18_000)]
    [InlineData(BusinessApp.Mini, 0, 150_000, 75_000, 600_000, 12_500)]
    public async Task A_call_stores_the_providers_list_cost_and_the_charge_is_that_cost_times_the_margin(
        string model, int cachedTokens, long input, long cachedInput, long output, int marginBasisPoints)
    {
        app.Upstream.Reset();
        app.Upstream.CachedTokens = cachedTokens;
        try
        {
            var (client, userId) = await app.ApiUserAsync($"cost-{Guid.NewGuid():N}@example.test");
            var body = await (await client.PostAsJsonAsync("/api/v1/chat/completions",
                new { model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 50 })).Content.ReadFromJsonAsync<JsonObject>();
            await app.WaitForUsageAsync();

            var row = JsonNode.Parse((await app.Database.ScalarAsync<string>(
                $"select row_to_json(u)::text from usage_events u where user_id = '{userId}'"))!)!;
            var exact = ExactList(11, cachedTokens, 7, input, cachedInput, output);
            // Both rounded up once from the exact product, as the charge always was.
            Assert.Equal((long)Math.Ceiling(exact), row["provider_cost_micros"]!.GetValue<long>());
            Assert.Equal((long)Math.Ceiling(exact * marginBasisPoints / 10_000m), row["cost_micros"]!.GetValue<long>());
            Assert.Equal(row["cost_micros"]!.GetValue<long>() / 1_000_000m, body!["usage"]!["cost"]!.GetValue<decimal>());
            Assert.True(row["cost_micros"]!.GetValue<long>() > row["provider_cost_micros"]!.GetValue<long>());
        }
        finally
        {
            app.Upstream.CachedTokens = 0;
        }
    }

    [Fact]
    public async Task Rollups_sum_the_list_cost_and_a_bucket_with_a_call_from_before_the_column_has_none()
    {
        app.Upstream.Reset();
        var (client, userId) = await app.ApiUserAsync($"rollup-{Guid.NewGuid():N}@example.test");
        await BusinessApp.CallAsync(client, BusinessApp.Gpt, 3);
        await BusinessApp.CallAsync(client, BusinessApp.Mini, 2);
        await app.WaitForUsageAsync();
        // A call metered before migration 0016 (no list cost) of the same account, model and hour as the Mini calls.
        await app.Database.ExecuteAsync($"""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, estimated, streamed, status, latency_ms, created_at)
            select 'old-' || gen_random_uuid(), user_id, key_id, model_id, provider, 11, 7, 0, 8, false, false, 200, 10, created_at
            from usage_events where user_id = '{userId}' and model_id = '{BusinessApp.Mini}' limit 1
            """);

        await app.Services.GetRequiredService<UsageRollup>().RunAsync(CancellationToken.None);

        foreach (var table in (string[])["usage_rollups_hourly", "usage_rollups_daily"])
        {
            Assert.Equal(3 * 98L, await app.Database.ScalarAsync<long>(
                $"select provider_cost_micros from {table} where user_id = '{userId}' and model_id = '{BusinessApp.Gpt}'"));
            Assert.Equal(3 * 176L, await app.Database.ScalarAsync<long>(
                $"select cost_micros from {table} where user_id = '{userId}' and model_id = '{BusinessApp.Gpt}'"));
            Assert.True(await app.Database.ScalarAsync<bool>(
                $"select provider_cost_micros is null from {table} where user_id = '{userId}' and model_id = '{BusinessApp.Mini}'"));
        }
    }
}
