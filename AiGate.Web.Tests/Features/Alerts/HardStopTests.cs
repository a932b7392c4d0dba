using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Data;
using AiGate.Web.Features.Alerts;
using AiGate.Web.Tests.Features.Credits;
using AiGate.Web.Tests.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Alerts;

/// <summary>The metered gateway app, plus browser sessions for the settings page.</summary>
public sealed class HardStopApp : CreditsApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Accounts:PerIpPerMinute"] = "10000", ["Accounts:PerAccountPer15Minutes"] = "10000",
    };

    public WebSession NewSession() => new(CreateClient(new WebApplicationFactoryClientOptions
    {
        BaseAddress = new Uri("https://localhost"), AllowAutoRedirect = false, HandleCookies = true,
    }));

    public async Task<Guid> CreateUserAsync(string email, string password)
    {
        await using var scope = Services.CreateAsyncScope();
        var user = new AppUser { Id = Guid.CreateVersion7(), UserName = email, Email = email, EmailConfirmed = true, CreatedAt = DateTimeOffset.UtcNow };
        Assert.True((await scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>().CreateAsync(user, password)).Succeeded);
        return user.Id;
    }
}

/// <summary>
/// The hard stop over HTTP: once the month's spend reaches the budget and the alerts job has run,
/// /api/v1 answers 402 in OpenAI's envelope (the insufficient-credit code) from memory; raising the
/// budget on the settings page lifts it at once; a stop from another month does not count.
/// </summary>
public sealed class HardStopTests(HardStopApp app) : IClassFixture<HardStopApp>
{
    private const string Password = "password123";

    private static readonly object Chat = new Dictionary<string, object?>
    {
        ["model"] = CreditsApp.Model, ["messages"] = new[] { new { role = "user", content = "hi" } }, ["max_tokens"] = 20,
    };

    private async Task RunAlertsAsync()
    {
        await using var scope = app.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<UsageAlertChecker>().RunAsync(DateTimeOffset.UtcNow, CancellationToken.None);
    }

    private Task SpendAsync(Guid userId, long micros) => UsageData.InsertAsync(app.Database,
        [new RawUsage(userId, Guid.NewGuid(), CreditsApp.Model, "fake", DateTimeOffset.UtcNow, 1, 1, 0, micros, 200, 5)]);

    [Fact]
    public async Task Hard_stop_at_100_percent_returns_402_and_raising_the_budget_lifts_it()
    {
        app.Upstream.Reset();
        var email = $"stop-{Guid.NewGuid():N}@example.com";
        var user = await app.CreateUserAsync(email, Password);
        await app.GrantAsync(user, 10_000_000);
        using var api = app.CreateClient();
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await app.IssueKeyAsync(user));
        using var session = app.NewSession();
        Assert.Equal("/dashboard", (await session.LogInAsync(email, Password)).Headers.Location?.OriginalString);

        var form = new Dictionary<string, string>
        {
            ["Input.MonthlyBudgetUsd"] = "2", ["Input.Notify70"] = "true", ["Input.Notify90"] = "true", ["Input.Notify100"] = "true",
            ["Input.HardStop"] = "true", ["Input.LowBalanceEnabled"] = "true", ["Input.LowBalanceUsd"] = "1",
        };
        Assert.Equal(HttpStatusCode.Redirect, (await session.SubmitAsync("/Account/Manage/Alerts", form)).StatusCode);

        await SpendAsync(user, 1_999_999);
        await RunAlertsAsync();
        Assert.Equal(HttpStatusCode.OK, (await api.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);   // just under

        await SpendAsync(user, 1);   // exactly the budget
        await RunAlertsAsync();
        var upstreamCalls = app.Upstream.Requests.Count;
        var refused = await api.PostAsJsonAsync("/api/v1/chat/completions", Chat);
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        var error = JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("insufficient_credits", error["code"]!.GetValue<string>());
        Assert.Equal("insufficient_credits", error["type"]!.GetValue<string>());
        Assert.Null(error["param"]);
        Assert.Contains("monthly budget of $2", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(upstreamCalls, app.Upstream.Requests.Count);   // nothing went upstream
        Assert.Contains("data-testid=\"alert-stopped\"", await session.TextAsync("/Account/Manage/Alerts"), StringComparison.Ordinal);
        Assert.Contains("your hard stop is on", await session.TextAsync("/dashboard"), StringComparison.Ordinal);

        // Raising the budget lifts it: the page re-evaluates the stop and notifies every instance.
        form["Input.MonthlyBudgetUsd"] = "5";
        Assert.Equal(HttpStatusCode.Redirect, (await session.SubmitAsync("/Account/Manage/Alerts", form)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await api.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from budget_stops where user_id = '{user}'"));

        // Lowering it again stops it again at the next run; switching the hard stop off lifts it.
        form["Input.MonthlyBudgetUsd"] = "1";
        Assert.Equal(HttpStatusCode.Redirect, (await session.SubmitAsync("/Account/Manage/Alerts", form)).StatusCode);
        Assert.Equal(HttpStatusCode.PaymentRequired, (await api.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);
        form["Input.HardStop"] = "false";
        Assert.Equal(HttpStatusCode.Redirect, (await session.SubmitAsync("/Account/Manage/Alerts", form)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await api.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);
    }

    [Fact]
    public async Task A_stop_from_another_month_does_not_refuse_requests_and_the_job_clears_it()
    {
        app.Upstream.Reset();
        var (client, _, user) = await app.CreateApiClientAsync();
        var lastMonth = BudgetStatus.PeriodOf(DateTimeOffset.UtcNow).AddMonths(-1);
        await app.Database.ExecuteAsync($"""
            insert into budget_stops (user_id, period, budget_micros, spend_micros, created_at) values ('{user}', '{lastMonth:yyyy-MM-dd}', 1, 1, now())
            """);
        var stops = app.Services.GetRequiredService<BudgetStops>();
        await stops.ReloadAsync(CancellationToken.None);
        Assert.Null(stops.Find(user));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);

        await RunAlertsAsync();
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from budget_stops where user_id = '{user}'"));
    }

    [Fact]
    public async Task A_stop_written_by_another_instance_reaches_this_one_by_notice_within_seconds()
    {
        var (client, _, user) = await app.CreateApiClientAsync();
        var stops = app.Services.GetRequiredService<BudgetStops>();
        var period = BudgetStatus.PeriodOf(DateTimeOffset.UtcNow);

        // What another instance's alerts job does: the row and the notice, in one transaction. This
        // instance's periodic re-read is 30 s away, so only the notice can make it see the stop in time.
        await app.Database.ExecuteAsync($"""
            begin;
            insert into budget_stops (user_id, period, budget_micros, spend_micros, created_at) values ('{user}', '{period:yyyy-MM-dd}', 3000000, 3100000, now());
            select pg_notify('aigate_cache', '{BudgetStops.Notice}');
            commit;
            """);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (stops.Find(user) is null && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(new StoppedAccount(period, 3_000_000, 3_100_000), stops.Find(user));
        Assert.Equal(HttpStatusCode.PaymentRequired, (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);

        await app.Database.ExecuteAsync($"""
            begin; delete from budget_stops where user_id = '{user}'; select pg_notify('aigate_cache', '{BudgetStops.Notice}'); commit;
            """);
        deadline = DateTime.UtcNow.AddSeconds(5);
        while (stops.Find(user) is not null && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);
    }
}
