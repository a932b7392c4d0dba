using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using AiGate.Web.Features.Credits;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// Credits cannot be overdrawn, however many requests arrive at once and on however many instances
/// (DESIGN rule 1, RELIABILITY L1): a balance for exactly N calls never pays for more than N.
/// </summary>
public sealed class OverspendTests(CreditsApp app) : IClassFixture<CreditsApp>, IAsyncLifetime
{
    private const int N = 20;
    private const long CostPerCall = 18;   // the fake's 11 + 7 tokens at 1 µ$ each
    private WebApplicationFactory<Program> _second = null!;

    public Task InitializeAsync()
    {
        _second = SecondInstance.WithFakeOpenAi(app.Database.ConnectionString, app.Upstream.BaseUrl);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _second.DisposeAsync();

    [Fact]
    public async Task Five_times_N_concurrent_calls_on_one_instance_never_spend_more_than_N_calls_worth()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: N * CostPerCall);

        var statuses = await Task.WhenAll(Enumerable.Range(0, 5 * N).Select(i => CallAsync(client, stream: i % 2 == 0)));
        await app.WaitForUsageAsync();

        await AssertNoOverspendAsync(userId, statuses);
    }

    [Fact]
    public async Task Two_instances_sharing_one_account_never_spend_more_than_it_has()
    {
        app.Upstream.Reset();
        var (onA, key, userId) = await app.CreateApiClientAsync(creditMicros: N * CostPerCall);
        var onB = _second.CreateClient();
        onB.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

        var statuses = await Task.WhenAll(Enumerable.Range(0, 5 * N).Select(i => CallAsync(i % 2 == 0 ? onA : onB, stream: i % 3 == 0)));
        await app.WaitForUsageAsync();
        var secondWriter = _second.Services.GetRequiredService<UsageWriter>();
        while (secondWriter.Pending > 0) await Task.Delay(20);

        await AssertNoOverspendAsync(userId, statuses);
    }

    private async Task AssertNoOverspendAsync(Guid userId, HttpStatusCode[] statuses)
    {
        var succeeded = statuses.Count(s => s == HttpStatusCode.OK);
        Assert.All(statuses, s => Assert.Contains(s, new[] { HttpStatusCode.OK, HttpStatusCode.PaymentRequired }));
        Assert.InRange(succeeded, 1, N);
        Assert.Equal(succeeded, app.Upstream.ChatRequests);   // refused calls never reached the provider

        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(N * CostPerCall - succeeded * CostPerCall, balance);
        Assert.Equal(balance, ledger);
        Assert.Equal(succeeded * CostPerCall, await app.UsageCostAsync(userId));
        Assert.True(balance >= 0);
        Assert.Equal(0, await app.Database.ScalarAsync<long>("select count(*) from credit_accounts where balance_micros < 0 or held_micros < 0"));
    }

    private static async Task<HttpStatusCode> CallAsync(HttpClient client, bool stream)
    {
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", new
        {
            model = CreditsApp.Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 10, stream,
        });
        if (response.StatusCode == HttpStatusCode.OK) await response.Content.ReadAsStringAsync();
        return response.StatusCode;
    }
}
