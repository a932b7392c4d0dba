using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// An instance killed with SIGKILL in the middle of a stream leaves no credit held forever: its
/// lease expires and another instance's sweeper returns it, so the balance is whole again minus only
/// what was recorded (RELIABILITY F7, issue #5).
/// </summary>
public sealed class CrashTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    [Fact]
    public async Task A_killed_instance_leaves_no_reservation_held_after_the_lease_timeout()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.SlowStream;
        app.Upstream.Reply = string.Join(' ', Enumerable.Repeat("word", 60));
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 5_000);
        var key = await app.IssueKeyAsync(userId);

        await using var child = AppProcess.Start(app.InstanceEnvironment());
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            using var http = new HttpClient { BaseAddress = await child.WaitReadyAsync() };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

            // A freshly started instance fails closed (503) until its first lease heartbeat; on a loaded machine
            // that can come after /healthz answers, so ask again while it is still starting.
            HttpResponseMessage response;
            while (true)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/completions")
                {
                    Content = JsonContent.Create(new { model = CreditsApp.Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 200, stream = true }),
                };
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable || DateTime.UtcNow >= deadline) break;
                response.Dispose();
                await Task.Delay(200);
            }
            using var _ = response;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var stream = await response.Content.ReadAsStreamAsync();
            Assert.True(await stream.ReadAsync(new byte[512]) > 0);   // the stream is flowing, credit is reserved

            Assert.True(await app.Database.ScalarAsync<long>($"select held_micros from credit_accounts where user_id = '{userId}'") > 0);
            await child.KillAsync();   // SIGKILL: no shutdown, no flush, no lease return

            // The surviving instance (this test's app) sweeps leases whose renewal stopped.
            var sweepDeadline = DateTime.UtcNow.AddSeconds(45);
            long held;
            while ((held = await app.Database.ScalarAsync<long>($"select held_micros from credit_accounts where user_id = '{userId}'")) > 0
                   && DateTime.UtcNow < sweepDeadline)
                await Task.Delay(500);

            Assert.Equal(0, held);
            var (balance, _, ledger) = await app.MoneyAsync(userId);
            Assert.Equal(5_000 - await app.UsageCostAsync(userId), balance);
            Assert.Equal(balance, ledger);
            Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from credit_leases where user_id = '{userId}'"));
        }
        finally
        {
            await child.DisposeAsync();
            app.Upstream.Reply = "Hello from the fake upstream";
        }
    }
}
