using System.Net;
using System.Net.Http.Json;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>The credits fixture's model and fake provider, plus admin sessions, with a slow flush so records share a batch.</summary>
public sealed class DeadLetterApp : AccountsApp
{
    public FakeOpenAi Upstream { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Upstream = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(CreditsApp.Model, "Metered", "fake", "fake-model");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Providers:fake:Kind"] = "openai", ["Providers:fake:BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers:fake:ApiKey"] = "sk-fake",
        ["Credits:FlushIntervalMs"] = "1000",
    };
}

/// <summary>
/// A usage record PostgreSQL refuses for good no longer blocks the usage writer (issue #11 item 8): the batch is
/// written record by record, the refused one goes to usage_dead_letters (logged, listed for admins, not charged)
/// and every other record of the batch and after it is written.
/// </summary>
public sealed class DeadLetterTests(DeadLetterApp app) : IClassFixture<DeadLetterApp>
{
    [Fact]
    public async Task A_record_postgres_refuses_is_set_aside_and_the_rest_of_its_batch_is_written()
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000_000);
        var writer = app.Services.GetRequiredService<UsageWriter>();

        // A provider name longer than usage_events.provider (64) allows: SQLSTATE 22001 on every retry.
        var bad = new UsageRecord($"bad-{Guid.NewGuid():N}", userId, Guid.NewGuid(), Guid.NewGuid(), CreditsApp.Model, new string('p', 80),
            new TokenUsage(11, 7), 18, Streamed: false, Status: 200, LatencyMs: 5, TimeToFirstByteMs: 5, DateTimeOffset.UtcNow);
        await writer.EnqueueAsync(bad, CancellationToken.None);
        // Good calls over HTTP, within the same 1 s flush window as the bad record.
        var calls = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => client.PostAsJsonAsync("/api/v1/chat/completions",
            new { model = CreditsApp.Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 50 })));
        Assert.All(calls, c => Assert.Equal(HttpStatusCode.OK, c.StatusCode));
        await app.WaitForUsageAsync();

        Assert.Equal(5, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
        Assert.Equal(1, await app.Database.ScalarAsync<long>(
            $"select count(*) from usage_dead_letters where request_id = '{bad.RequestId}' and sql_state = '22001' and user_id = '{userId}'"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where request_id = '{bad.RequestId}'"));
        // Money: the five calls charged (18 micro-USD each), the refused record not; the ledger matches the balance.
        var balance = await app.Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{userId}'");
        var ledger = await app.Database.ScalarAsync<long>($"select sum(amount_micros)::bigint from ledger_entries where user_id = '{userId}'");
        Assert.Equal(1_000_000 - 5 * 18, balance);
        Assert.Equal(balance, ledger);

        // The writer is not stuck: a later call is written too.
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions",
            new { model = CreditsApp.Model, messages = new[] { new { role = "user", content = "again" } }, max_tokens = 50 })).StatusCode);
        await app.WaitForUsageAsync();
        Assert.Equal(6, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));

        // Admins see it.
        var email = $"admin-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, "a long enough passphrase", admin: true);
        using var admin = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await admin.LogInAsync(email, "a long enough passphrase")).StatusCode);
        var page = await admin.GetAsync("/Admin/UsageDeadLetters");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains(bad.RequestId, html, StringComparison.Ordinal);
        Assert.Contains("22001", html, StringComparison.Ordinal);

        // Not for ordinary users.
        var (_, user) = await app.SignedInAsync("plain");
        var refused = await user.GetAsync("/Admin/UsageDeadLetters");
        Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
        Assert.StartsWith("/Account/AccessDenied", refused.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
    }
}
