using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// A lease top-up that outlives the API's database deadline (RELIABILITY F10: a 503 within 2 s, also when the database
/// hangs). Its statement was sent, so the instance cannot know whether it will commit: the lease is retired, the
/// organization spends from a fresh one, and the retired lease's row goes back to the balance whole, but only once the
/// calls it had reserved are settled and written (a stream still running on it keeps it alive, checkpoints and all).
/// Another transaction's lock on the account row stands in for the hung database.
/// </summary>
public sealed class LeaseRetireTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    [Fact]
    public async Task A_top_up_past_its_deadline_answers_503_and_retires_the_lease_whose_row_goes_back_after_its_stream_is_written()
    {
        app.Upstream.Reset();
        var (http, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000_000);
        var leases = app.Services.GetRequiredService<CreditLeases>();

        // A first call leases a quarter of the balance; a slow stream then reserves from that lease and stays open.
        using (var first = await http.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody()))
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var leaseId = await app.Database.ScalarAsync<Guid>($"select id from credit_leases where user_id = '{userId}'");
        app.Upstream.WordDelay = TimeSpan.FromSeconds(1);
        var stream = Task.Run(async () =>
        {
            using var response = await http.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody(stream: true));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        });
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (leases.InFlight(userId) == 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(1, leases.InFlight(userId));

        // The lease's unreserved credit goes back (as when idle), so the next call needs a top-up, which waits on the
        // locked account row past the 1 s deadline.
        await leases.ReturnIdleAsync(all: true, CancellationToken.None);
        (HttpStatusCode StatusCode, string? Code, TimeSpan? RetryAfter, TimeSpan took)[] refusals;
        await using (await app.LockAccountRowAsync(userId))
        {
            // Three at once: one tops up, two wait behind the lease's gate and find it retired when they get it.
            refusals = await Task.WhenAll(Enumerable.Range(0, 3).Select(async _ =>
            {
                var watch = Stopwatch.StartNew();
                using var refused = await http.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody());
                var took = watch.Elapsed;
                var body = await refused.Content.ReadAsStringAsync();
                return (refused.StatusCode, Code: JsonNode.Parse(body)?["error"]?["code"]?.GetValue<string>(), RetryAfter: refused.Headers.RetryAfter?.Delta, took);
            }));
        }
        foreach (var refused in refusals)
        {
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "billing_unavailable"), (refused.StatusCode, refused.Code));
            Assert.True(refused.RetryAfter >= TimeSpan.FromSeconds(1), "Retry-After");
            Assert.True(refused.took < TimeSpan.FromSeconds(2), $"a refusal took {refused.took.TotalMilliseconds:0} ms");
        }
        Assert.Equal(2, app.Upstream.ChatRequests);   // the refused call never went upstream: the first call and the stream only

        // Past a release pass, the retired lease's row is still there while its stream runs.
        await Task.Delay(1500);
        Assert.False(stream.IsCompleted, "the stream ended too early for this test");
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from credit_leases where id = '{leaseId}'"));

        // The stream ends whole and is written; then the row goes back, and the next call spends from a fresh lease.
        var (status, body) = await stream;
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("data: [DONE]", body, StringComparison.Ordinal);
        deadline = DateTime.UtcNow.AddSeconds(15);
        while (await app.Database.ScalarAsync<long>($"select count(*) from credit_leases where id = '{leaseId}'") > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the retired lease's row was not released");
            await Task.Delay(200);
        }
        app.Upstream.WordDelay = TimeSpan.Zero;
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)   // the database counts as down for a second after the missed deadline
        {
            using var next = await http.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody());
            if (next.StatusCode == HttpStatusCode.OK) break;
            Assert.True(next.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline, $"{next.StatusCode}");
            await Task.Delay(200);
        }
        Assert.NotEqual(leaseId, await app.Database.ScalarAsync<Guid>($"select id from credit_leases where user_id = '{userId}'"));

        // Held credit is exactly what the live lease holds; every call is charged once and the ledger matches.
        await app.WaitForUsageAsync();
        Assert.Equal(3, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
        Assert.Equal(await app.LeaseRowsHoldAsync(userId), (await app.MoneyAsync(userId)).Held);
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(balance, ledger);
        Assert.Equal(1_000_000 - await app.UsageCostAsync(userId), balance);
    }
}
