using System.Net;
using System.Net.Http.Json;
using AiGate.Web.Features.Credits;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// An instance frozen for longer than its lease TTL (SIGSTOP: a paused VM, a partition) has its leases swept by
/// another instance; when it thaws it must not spend from them (issue #11 item 6): its heartbeat finds the rows
/// gone and drops the leases, so the next call needs a new lease from the balance that is left.
/// </summary>
public sealed class LeaseResyncTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    [Fact]
    public async Task A_thawed_instance_does_not_spend_from_a_lease_that_was_swept_while_it_was_frozen()
    {
        app.Upstream.Reset();
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 1_000_000);
        var key = await app.IssueKeyAsync(userId);
        var (child, http) = await app.StartInstanceAsync(key);
        await using var _ = child;
        using var __ = http;

        // The child holds a lease (a quarter of the balance, 250,000 micro-USD, most of it unspent).
        var childLeases = $"select count(*) from credit_leases where user_id = '{userId}' and held_micros > 0";
        Assert.Equal(1, await app.Database.ScalarAsync<long>(childLeases));
        var written = DateTime.UtcNow.AddSeconds(10);   // its first call's usage written, so the balance below is final
        while (await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == 0 && DateTime.UtcNow < written)
            await Task.Delay(50);

        await child.SignalAsync("STOP");
        try
        {
            // Its lease expires (TTL 10 s) and this instance's sweeper returns it to the balance.
            var deadline = DateTime.UtcNow.AddSeconds(40);
            var leases = app.Services.GetRequiredService<CreditLeases>();
            while (await app.Database.ScalarAsync<long>($"select count(*) from credit_leases where user_id = '{userId}'") > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the frozen instance's lease was not swept");
                await Task.Delay(500);
                await leases.HeartbeatAndSweepAsync(CancellationToken.None);
            }
            Assert.Equal(0, await app.Database.ScalarAsync<long>($"select held_micros from credit_accounts where user_id = '{userId}'"));
            // Meanwhile the whole balance is spent elsewhere (an operator's adjustment stands in for other instances' calls).
            var balance = await app.Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{userId}'");
            await app.Services.GetRequiredService<Ledger>().PostAsync(userId, LedgerKinds.Adjustment, -balance, "spent elsewhere", null, CancellationToken.None);
        }
        finally
        {
            await child.SignalAsync("CONT");
        }

        // Thawed: 503 until its heartbeat answers, then 402 (nothing left), never a call paid from the swept lease.
        var upstreamBefore = app.Upstream.ChatRequests;
        var until = DateTime.UtcNow.AddSeconds(20);
        HttpStatusCode status;
        while ((status = (await http.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody())).StatusCode) == HttpStatusCode.ServiceUnavailable
               && DateTime.UtcNow < until)
            await Task.Delay(200);
        Assert.Equal(HttpStatusCode.PaymentRequired, status);
        Assert.Equal(upstreamBefore, app.Upstream.ChatRequests);
        Assert.Contains("was swept while this instance could not renew it", child.Log, StringComparison.Ordinal);

        var (finalBalance, held, ledger) = await app.MoneyAsync(userId);
        Assert.True(finalBalance >= 0, $"balance {finalBalance}");
        Assert.Equal(finalBalance, ledger);
        Assert.Equal(0, held);
    }
}
