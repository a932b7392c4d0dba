using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>The app's clock, moved forward by a test (the monotonic clock is the system's).</summary>
public sealed class ShiftedClock : TimeProvider
{
    private long _offsetTicks;

    public TimeSpan Offset
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
        set => Interlocked.Exchange(ref _offsetTicks, value.Ticks);
    }

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;
}

/// <summary><see cref="CreditsApp"/> on a clock the tests can move to the next month.</summary>
public sealed class MemberBudgetApp : CreditsApp
{
    public ShiftedClock Clock { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureServices(s => s.AddSingleton<TimeProvider>(Clock));
    }

    /// <summary>What the member's keys were charged (usage rows), what member_budgets counts, and whether every hold adds up.</summary>
    public async Task<(long Charged, long Spent, bool HoldsAddUp)> MemberMoneyAsync(Guid orgId, Guid memberId)
    {
        var charged = await Database.ScalarAsync<long>($"""
            select coalesce(sum(u.cost_micros), 0)::bigint from usage_events u join api_keys k on k.id = u.key_id
            where u.user_id = '{orgId}' and k.created_by = '{memberId}'
            """);
        var spent = await Database.ScalarAsync<long>($"select coalesce((select spent_micros from member_budgets where org_id = '{orgId}' and user_id = '{memberId}'), 0)");
        // One statement, one snapshot: the member's held budget is what its leases hold, the organization's held credit what all of its leases hold.
        var holds = await Database.ScalarAsync<bool>($"""
            select coalesce((select held_micros from member_budgets where org_id = '{orgId}' and user_id = '{memberId}'), 0)
                   = (select coalesce(sum(held_micros), 0) from credit_leases where user_id = '{orgId}' and member_id = '{memberId}')
               and (select held_micros from credit_accounts where user_id = '{orgId}')
                   = (select coalesce(sum(held_micros), 0) from credit_leases where user_id = '{orgId}')
            """);
        return (charged, spent, holds);
    }
}

/// <summary>
/// A member's monthly budget in an organization (issue 17) holds like the balance does (DESIGN rule 1): many concurrent
/// calls from the member's keys, on one instance or two sharing the database, never charge the member more than the
/// budget; the organization's balance and ledger stay right; refusals name the member's budget (402
/// member_budget_exceeded); the owner and a member without a budget go on; a new month (the app's clock) starts over.
/// </summary>
public sealed class MemberBudgetTests(MemberBudgetApp app) : IClassFixture<MemberBudgetApp>, IAsyncLifetime
{
    private const int N = 20;
    private const long CostPerCall = 18;   // the fake's 11 + 7 tokens at 1 µ$ each
    private const long Budget = N * CostPerCall;
    private const long Grant = 10_000_000;
    private WebApplicationFactory<Program> _second = null!;

    public Task InitializeAsync()
    {
        _second = SecondInstance.WithFakeOpenAi(app.Database.ConnectionString, app.Upstream.BaseUrl);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _second.DisposeAsync();

    private async Task<(Guid Org, Guid Owner, Guid Member, Guid Other)> TeamAsync(long budget = Budget)
    {
        var owner = await app.CreateUserAsync();
        var org = await app.CreateTeamAsync(owner);
        var member = await app.CreateUserAsync();
        await app.AddMemberAsync(org, member, budgetMicros: budget);
        var other = await app.CreateUserAsync();
        await app.AddMemberAsync(org, other, role: OrgRole.Admin);
        await app.GrantAsync(org, Grant);
        return (org, owner, member, other);
    }

    private static async Task<(HttpStatusCode Status, string? Code)> CallAsync(HttpClient client, bool stream = false)
    {
        using var response = await client.PostAsJsonAsync("/api/v1/chat/completions", new
        {
            model = CreditsApp.Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 10, stream,
        });
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode == HttpStatusCode.OK) return (response.StatusCode, null);
        var error = JsonNode.Parse(body)!["error"]!;
        return (response.StatusCode, error["code"]?.GetValue<string>());
    }

    private async Task AssertWithinBudgetAsync(Guid org, Guid member, (HttpStatusCode Status, string? Code)[] results, long budget = Budget)
    {
        var succeeded = results.Count(r => r.Status == HttpStatusCode.OK);
        Assert.All(results, r => Assert.True(r.Status == HttpStatusCode.OK || (r.Status == HttpStatusCode.PaymentRequired && r.Code == "member_budget_exceeded"),
            $"{r.Status} {r.Code}"));
        Assert.InRange(succeeded, 1, (int)(budget / CostPerCall));
        Assert.Contains(results, r => r.Status == HttpStatusCode.PaymentRequired);
        Assert.Equal(succeeded, app.Upstream.ChatRequests);   // refused calls never reached the provider

        var (charged, spent, holds) = await app.MemberMoneyAsync(org, member);
        Assert.Equal(succeeded * CostPerCall, charged);
        Assert.InRange(charged, 1, budget);
        Assert.Equal(charged, spent);
        Assert.True(holds, "held budget and credit equal what the leases hold");
        var (balance, _, ledger) = await app.MoneyAsync(org);
        Assert.Equal(Grant - charged, balance);
        Assert.Equal(balance, ledger);
        Assert.Equal(0, await app.Database.ScalarAsync<long>("select count(*) from credit_accounts where balance_micros < 0 or held_micros < 0"));
    }

    [Fact]
    public async Task Many_concurrent_calls_from_a_members_keys_on_one_instance_never_spend_more_than_the_members_budget()
    {
        app.Upstream.Reset();
        var (org, owner, member, other) = await TeamAsync();
        var (first, _) = await app.MemberClientAsync(org, member);
        var (second, _) = await app.MemberClientAsync(org, member);

        var results = await Task.WhenAll(Enumerable.Range(0, 5 * N).Select(i => CallAsync(i % 2 == 0 ? first : second, stream: i % 3 == 0)));
        await app.WaitForUsageAsync();

        await AssertWithinBudgetAsync(org, member, results);
        var refusal = await first.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody(maxTokens: 10));
        var error = (await refusal.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("insufficient_credits", error["type"]!.GetValue<string>());
        Assert.Contains("monthly budget in this organization ($0.00036", error["message"]!.GetValue<string>(), StringComparison.Ordinal);

        // The organization still has money: its owner and a member without a budget are not held by this one's.
        var (ownerClient, _) = await app.MemberClientAsync(org, owner);
        var (otherClient, _) = await app.MemberClientAsync(org, other);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await CallAsync(ownerClient)).Status);
            Assert.Equal(HttpStatusCode.OK, (await CallAsync(otherClient, stream: true)).Status);
        }
        await app.WaitForUsageAsync();
        var (charged, _, _) = await app.MemberMoneyAsync(org, member);
        var (balance, _, ledger) = await app.MoneyAsync(org);
        Assert.Equal(Grant - charged - 6 * CostPerCall, balance);
        Assert.Equal(balance, ledger);
        Assert.Equal(3 * CostPerCall, (await app.MemberMoneyAsync(org, other)).Spent);   // counted, not limited
    }

    [Fact]
    public async Task Two_instances_sharing_the_database_never_spend_more_than_the_members_budget()
    {
        app.Upstream.Reset();
        var (org, _, member, _) = await TeamAsync();
        var (onA, key) = await app.MemberClientAsync(org, member);
        var (onA2, key2) = await app.MemberClientAsync(org, member);
        var onB = _second.CreateClient();
        onB.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        var onB2 = _second.CreateClient();
        onB2.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key2);
        HttpClient[] clients = [onA, onB, onA2, onB2];

        var results = await Task.WhenAll(Enumerable.Range(0, 5 * N).Select(i => CallAsync(clients[i % 4], stream: i % 3 == 0)));
        await app.WaitForUsageAsync();
        var secondWriter = _second.Services.GetRequiredService<UsageWriter>();
        while (secondWriter.Pending > 0) await Task.Delay(20);

        await AssertWithinBudgetAsync(org, member, results);
    }

    [Fact]
    public async Task A_new_month_on_the_apps_clock_starts_the_budget_over()
    {
        app.Upstream.Reset();
        var (org, _, member, _) = await TeamAsync(budget: 100);
        var (client, _) = await app.MemberClientAsync(org, member);
        var results = new List<(HttpStatusCode, string?)>();
        for (var i = 0; i < 10 && (results.Count == 0 || results[^1].Item1 == HttpStatusCode.OK); i++) results.Add(await CallAsync(client));
        await app.WaitForUsageAsync();
        await AssertWithinBudgetAsync(org, member, [.. results], budget: 100);
        var before = (await app.MemberMoneyAsync(org, member)).Spent;

        var now = app.Clock.GetUtcNow();
        var nextMonth = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1).AddHours(1);
        app.Clock.Offset += nextMonth - now;
        try
        {
            // The wall clock jumped: the instance renews its leases before it spends again (as it would a minute into a month).
            await app.Services.GetRequiredService<CreditLeases>().HeartbeatAndSweepAsync(CancellationToken.None);
            Assert.Equal(HttpStatusCode.OK, (await CallAsync(client)).Status);
            Assert.Equal(HttpStatusCode.OK, (await CallAsync(client)).Status);
            await app.WaitForUsageAsync();
            Assert.Equal(2 * CostPerCall, (await app.MemberMoneyAsync(org, member)).Spent);
            Assert.Equal(DateOnly.FromDateTime(nextMonth.UtcDateTime.Date).AddDays(-nextMonth.Day + 1),
                await app.Database.ScalarAsync<DateOnly>($"select month from member_budgets where org_id = '{org}' and user_id = '{member}'"));
            var (balance, _, ledger) = await app.MoneyAsync(org);
            Assert.Equal(Grant - before - 2 * CostPerCall, balance);
            Assert.Equal(balance, ledger);
        }
        finally
        {
            app.Clock.Offset = TimeSpan.Zero;
            await app.Services.GetRequiredService<CreditLeases>().HeartbeatAndSweepAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// An instance killed (SIGKILL) mid-stream of a member with a budget: the survivor's sweep gives the member's held
    /// budget back with the organization's held credit, and the stream's last checkpoint is charged to the organization
    /// and counted as the member's spend.
    /// </summary>
    [Fact]
    public async Task A_killed_instance_gives_the_members_held_budget_back_and_its_stream_counts_as_theirs()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.SlowStream;
        app.Upstream.Reply = string.Join(' ', Enumerable.Repeat("word", 60));
        var (org, _, member, _) = await TeamAsync(budget: 5_000);
        var (_, key) = await app.MemberClientAsync(org, member);
        await using var child = AppProcess.Start(app.InstanceEnvironment());
        try
        {
            using var http = new HttpClient { BaseAddress = await child.WaitReadyAsync() };
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            HttpResponseMessage response;
            while (true)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/completions") { Content = JsonContent.Create(CreditsApp.ChatBody(stream: true, maxTokens: 200)) };
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable || DateTime.UtcNow >= deadline) break;
                response.Dispose();
                await Task.Delay(200);
            }
            using var _ = response;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            var until = DateTime.UtcNow.AddSeconds(5);   // two checkpoint periods of a flowing stream (a word every 200 ms)
            while (DateTime.UtcNow < until && await reader.ReadLineAsync() is not null) { }
            Assert.True(await app.Database.ScalarAsync<long>($"select held_micros from member_budgets where org_id = '{org}' and user_id = '{member}'") > 0);
            Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from stream_checkpoints where user_id = '{org}' and member_id = '{member}'"));
            await child.KillAsync();

            var sweepDeadline = DateTime.UtcNow.AddSeconds(45);
            while ((await app.Database.ScalarAsync<long>($"select count(*) from credit_leases where user_id = '{org}'") > 0 ||
                    await app.Database.ScalarAsync<long>($"select count(*) from stream_checkpoints where user_id = '{org}'") > 0) && DateTime.UtcNow < sweepDeadline)
                await Task.Delay(500);

            Assert.Equal(0, await app.Database.ScalarAsync<long>($"select held_micros from member_budgets where org_id = '{org}' and user_id = '{member}'"));
            var (charged, spent, holds) = await app.MemberMoneyAsync(org, member);
            Assert.True(charged > 0, "the stream cut off by the kill is charged from its checkpoint");
            Assert.Equal(charged, spent);
            Assert.True(holds);
            var (balance, held, ledger) = await app.MoneyAsync(org);
            Assert.Equal(0, held);
            Assert.Equal(Grant - charged, balance);
            Assert.Equal(balance, ledger);
        }
        finally
        {
            await child.DisposeAsync();
            app.Upstream.Reply = "Hello from the fake upstream";
        }
    }

    [Fact]
    public async Task A_members_top_up_past_its_deadline_retires_the_lease_and_gives_its_hold_back_to_the_budget_and_the_balance()
    {
        app.Upstream.Reset();
        // A budget of 4,000 micro-USD: the member's first lease takes a quarter of it (1,000), which a call reserving
        // about 1,000 (max_tokens 1,000) no longer fits after one small call, so that call needs a top-up.
        var (org, _, member, _) = await TeamAsync(budget: 4_000);
        var (client, _) = await app.MemberClientAsync(org, member);
        Assert.Equal((HttpStatusCode.OK, (string?)null), await CallAsync(client));
        await app.WaitForUsageAsync();
        var leaseId = await app.Database.ScalarAsync<Guid>($"select id from credit_leases where user_id = '{org}' and member_id = '{member}'");
        Assert.True(await app.Database.ScalarAsync<long>($"select held_micros from member_budgets where org_id = '{org}' and user_id = '{member}'") > 900);

        await using (await app.LockAccountRowAsync(org))
        {
            using var refused = await client.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody(maxTokens: 1000));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("billing_unavailable", (await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        }

        // The retired lease's row goes back whole: the member's held budget and the organization's held credit with it.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (await app.Database.ScalarAsync<long>($"select count(*) from credit_leases where id = '{leaseId}'") > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the retired member lease's row was not released");
            await Task.Delay(200);
        }
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select held_micros from member_budgets where org_id = '{org}' and user_id = '{member}'"));
        Assert.Equal(0, (await app.MoneyAsync(org)).Held);

        // The member spends again from a fresh lease once the database counts as up (a second after the missed deadline).
        deadline = DateTime.UtcNow.AddSeconds(10);
        (HttpStatusCode Status, string? Code) again;
        while ((again = await CallAsync(client)).Status == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.Equal((HttpStatusCode.OK, (string?)null), again);
        await app.WaitForUsageAsync();
        var (charged, spent, holds) = await app.MemberMoneyAsync(org, member);
        Assert.Equal(2 * CostPerCall, charged);
        Assert.Equal(charged, spent);
        Assert.True(holds, "held budget and credit equal what the leases hold");
        var (balance, _, ledger) = await app.MoneyAsync(org);
        Assert.Equal(Grant - charged, balance);
        Assert.Equal(balance, ledger);
        Assert.Equal(2, app.Upstream.ChatRequests);   // the refused call never reached the provider
    }
}
