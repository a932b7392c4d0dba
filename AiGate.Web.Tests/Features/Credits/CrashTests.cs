using System.Diagnostics;
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

        // Port 0: the child binds a port nobody else can hold and says which; a port picked here could be taken by
        // another test's app before the child binds it, and the test would talk to that app instead.
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var child = Process.Start(new ProcessStartInfo("dotnet")
        {
            ArgumentList = { RepoPaths.WebDll, "--urls", "http://127.0.0.1:0" },
            WorkingDirectory = Path.Combine(RepoPaths.Root, "AiGate.Web"),
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            Environment =
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Testing", ["ConnectionStrings__Default"] = app.Database.ConnectionString,
                ["Jobs__SchedulerEnabled"] = "false", ["Credits__LeaseTtlSeconds"] = "10",
                ["Providers__fake__Kind"] = "openai", ["Providers__fake__BaseUrl"] = app.Upstream.BaseUrl.ToString(), ["Providers__fake__ApiKey"] = "sk-fake",
                // As AiGateApp: the free plan's rate limits must not be what refuses the call (or its retries below).
                ["Billing__Plans__0__RequestsPerMinute"] = "100000", ["Billing__Plans__0__TokensPerMinute"] = "1000000000",
            },
        })!;
        child.OutputDataReceived += (_, e) =>
        {
            const string marker = "Now listening on: ";
            var at = e.Data?.IndexOf(marker, StringComparison.Ordinal) ?? -1;
            if (at >= 0) listening.TrySetResult(new Uri(e.Data![(at + marker.Length)..].Trim()));
        };
        child.ErrorDataReceived += (_, _) => { };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60)) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                try { if ((await http.GetAsync("/healthz")).IsSuccessStatusCode) break; }
                catch (HttpRequestException) { }
                Assert.True(DateTime.UtcNow < deadline, "the child instance did not start");
                await Task.Delay(200);
            }

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
            child.Kill(entireProcessTree: true);   // SIGKILL: no shutdown, no flush, no lease return
            await child.WaitForExitAsync();

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
            if (!child.HasExited) child.Kill(entireProcessTree: true);
            app.Upstream.Reply = "Hello from the fake upstream";
        }
    }
}
