using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using AiGate.Web.Features.Credits;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// An instance frozen for longer than its lease TTL (SIGSTOP: a paused VM, a partition) has its leases swept by
/// another instance; when it thaws it must neither spend from them nor give their credit back a second time
/// (issue #11 item 6): it finds the rows gone and drops the leases, so the next call needs a new lease from
/// what is really available.
/// </summary>
public sealed class LeaseResyncTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    [Fact]
    public async Task A_thawed_instance_does_not_reuse_or_return_a_lease_that_was_swept_while_it_was_frozen()
    {
        app.Upstream.Reset();
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 1_000_000);
        var childKey = await app.IssueKeyAsync(userId);
        var localKey = await app.IssueKeyAsync(userId);
        var childKeyId = await app.Database.ScalarAsync<Guid>($"select id from api_keys where owner_id = '{userId}' order by created_at, id limit 1");
        var (child, http) = await app.StartInstanceAsync(childKey);
        await using var _ = child;
        using var __ = http;
        var childRows = $"select count(*) from usage_events where key_id = '{childKeyId}'";
        var written = DateTime.UtcNow.AddSeconds(10);   // its first call is written, so the sums below are final
        while (await app.Database.ScalarAsync<long>(childRows) == 0 && DateTime.UtcNow < written) await Task.Delay(50);
        Assert.Equal(1, await app.Database.ScalarAsync<long>(childRows));
        // The child holds a lease: a quarter of the balance, almost all of it unspent.
        Assert.True(await app.Database.ScalarAsync<long>($"select held_micros from credit_accounts where user_id = '{userId}'") > 200_000);

        using var local = app.CreateClient();
        local.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", localKey);
        using var stopLocal = new CancellationTokenSource();
        Task? localTraffic = null;
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

            // Meanwhile this instance leases the credit and keeps using it (so its own slice is never idle) ...
            Assert.Equal(HttpStatusCode.OK, (await local.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody())).StatusCode);
            localTraffic = Task.Run(async () =>
            {
                while (!stopLocal.IsCancellationRequested)
                {
                    using var response = await local.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody(), CancellationToken.None);
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    try { await Task.Delay(500, stopLocal.Token); } catch (OperationCanceledException) { }
                }
            });
            // ... and the rest of the balance is spent elsewhere (an operator's adjustment stands in): nothing is available.
            await app.WaitForUsageAsync();
            var available = await app.Database.ScalarAsync<long>($"select balance_micros - held_micros from credit_accounts where user_id = '{userId}'");
            await app.Services.GetRequiredService<Ledger>().PostAsync(userId, LedgerKinds.Adjustment, -available, "spent elsewhere", null, CancellationToken.None);
        }
        finally
        {
            await child.SignalAsync("CONT");
        }

        try
        {
            // Thawed: 503 until its heartbeat answers, then 402 (nothing available), never a call paid from the swept lease
            // or from credit this instance holds.
            var until = DateTime.UtcNow.AddSeconds(20);
            HttpStatusCode status;
            while ((status = (await http.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody())).StatusCode) == HttpStatusCode.ServiceUnavailable
                   && DateTime.UtcNow < until)
                await Task.Delay(200);
            Assert.Equal(HttpStatusCode.PaymentRequired, status);
            await Task.Delay(500);
            Assert.Equal(1, await app.Database.ScalarAsync<long>(childRows));
            Assert.Contains("was swept while this instance could not renew it", child.Log, StringComparison.Ordinal);
        }
        finally
        {
            await stopLocal.CancelAsync();
            if (localTraffic is not null) await localTraffic;
        }

        // Held credit is exactly what the live leases hold (the swept one was not released twice); the ledger matches.
        await app.WaitForUsageAsync();
        Assert.Equal(await app.LeaseRowsHoldAsync(userId), (await app.MoneyAsync(userId)).Held);
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.True(balance >= 0, $"balance {balance}");
        Assert.Equal(balance, ledger);
    }
}
