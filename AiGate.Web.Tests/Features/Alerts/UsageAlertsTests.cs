using System.Net;
using AiGate.Web.Features.Alerts;
using AiGate.Web.Features.Credits;
using AiGate.Web.Tests.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Alerts;

/// <summary>
/// The alerts job's body run directly (as the scheduler would), against usage rows written straight to
/// <c>usage_events</c> and balances moved through the ledger: budget e-mails at 70/90/100 % once each per
/// month even when two runs race, a fresh start next month, low-balance e-mails once per crossing.
/// </summary>
public sealed class UsageAlertsTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private const string Password = "password123";

    private async Task<(Guid Id, string Email)> UserAsync()
    {
        var email = $"alerts-{Guid.NewGuid():N}@example.com";
        return ((await app.CreateUserAsync(email, Password)).Id, email);
    }

    private Task PostAsync(Guid userId, string kind, long micros) =>
        app.Services.GetRequiredService<Ledger>().PostAsync(userId, kind, micros, "test", null, CancellationToken.None);

    private Task SpendAsync(Guid userId, long micros, DateTimeOffset? at = null, string model = "openai/gpt-4o-mini") => UsageData.InsertAsync(app.Database,
        [new RawUsage(userId, Guid.NewGuid(), model, "openai", at ?? DateTimeOffset.UtcNow, 100, 10, 0, micros, 200, 50)]);

    private async Task<AlertRunResult> RunAsync(DateTimeOffset? now = null)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<UsageAlertChecker>().RunAsync(now ?? DateTimeOffset.UtcNow, CancellationToken.None);
    }

    private async Task<List<string>> KindsAsync(string email) => [.. (await app.MailToAsync(email)).Select(m => m.Kind)];

    [Fact]
    public async Task Crossing_70_90_and_100_percent_enqueues_exactly_one_email_each()
    {
        var (user, email) = await UserAsync();
        await PostAsync(user, LedgerKinds.Grant, 50_000_000);
        await PostAsync(user, LedgerKinds.Purchase, 10_000_000);   // the most recent top-up is the default budget: $10
        await SpendAsync(user, 6_990_000, model: "anthropic/claude-sonnet-4-5");

        await RunAsync();
        Assert.Empty(await KindsAsync(email));

        await SpendAsync(user, 10_000);   // $7.00: 70 %
        await RunAsync();
        await RunAsync();
        Assert.Equal(["usage-alert-70"], await KindsAsync(email));

        await SpendAsync(user, 2_500_000);   // $9.50: 95 %
        await RunAsync();
        Assert.Equal(["usage-alert-70", "usage-alert-90"], await KindsAsync(email));

        await SpendAsync(user, 500_000);   // $10.00: 100 %
        await RunAsync();
        await RunAsync();
        await SpendAsync(user, 5_000_000);
        await RunAsync();
        Assert.Equal(["usage-alert-70", "usage-alert-90", "usage-alert-100"], await KindsAsync(email));
        Assert.Equal(3, await app.Database.ScalarAsync<long>($"select count(*) from usage_alerts where user_id = '{user}'"));

        var full = (await app.MailToAsync(email)).Single(m => m.Kind == "usage-alert-100");
        Assert.Contains("reached your AiGate budget", full.Subject, StringComparison.Ordinal);
        Assert.Contains("Monthly budget: $10.00", full.TextBody, StringComparison.Ordinal);
        Assert.Contains("Spent this month: $10.00", full.TextBody, StringComparison.Ordinal);   // what it was when crossed
        Assert.Contains("Top models: anthropic/claude-sonnet-4-5: $6.99", full.TextBody, StringComparison.Ordinal);
        Assert.Contains("/billing", full.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("/Account/Manage/Alerts", full.TextBody, StringComparison.Ordinal);
        Assert.Contains("AiGate", full.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_runs_in_parallel_still_send_each_email_once()
    {
        var users = new List<(Guid Id, string Email)>();
        for (var i = 0; i < 6; i++)
        {
            var (user, email) = await UserAsync();
            await PostAsync(user, LedgerKinds.Grant, 1_000_000);
            await SpendAsync(user, 950_000);   // 95 %: one run crosses both 70 and 90
            users.Add((user, email));
        }

        for (var round = 0; round < 3; round++)
        {
            var results = await Task.WhenAll(RunAsync(), RunAsync());
            if (round > 0) Assert.All(results, r => Assert.Equal(0, r.BudgetAlerts));   // a retried run sends nothing
        }

        foreach (var (_, email) in users)
            Assert.Equal(["usage-alert-70", "usage-alert-90"], (await KindsAsync(email)).Order());
    }

    [Fact]
    public async Task The_next_month_starts_fresh()
    {
        var (user, email) = await UserAsync();
        await PostAsync(user, LedgerKinds.Grant, 10_000_000);
        var now = DateTimeOffset.UtcNow;
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        await SpendAsync(user, 10_500_000, monthStart.AddDays(-2));

        await RunAsync(monthStart.AddDays(-1));   // the job as it ran last month
        Assert.Equal(3, (await KindsAsync(email)).Count);

        await RunAsync(now);   // this month: nothing spent yet
        Assert.Equal(3, (await KindsAsync(email)).Count);

        await SpendAsync(user, 7_500_000, now.AddSeconds(-1));
        await RunAsync(now);
        Assert.Equal(["usage-alert-70", "usage-alert-90", "usage-alert-100", "usage-alert-70"], await KindsAsync(email));
        var periods = $"select string_agg(distinct period::text, ',' order by period::text) from usage_alerts where user_id = '{user}'";
        Assert.Equal($"{monthStart.AddMonths(-1):yyyy-MM-dd},{monthStart:yyyy-MM-dd}", await app.Database.ScalarAsync<string>(periods));
    }

    [Fact]
    public async Task Low_balance_fires_once_per_crossing_and_rearms_when_the_balance_is_back_up()
    {
        var (user, email) = await UserAsync();
        await PostAsync(user, LedgerKinds.Grant, 3_000_000);
        await RunAsync();
        Assert.DoesNotContain("low-balance", await KindsAsync(email));

        await PostAsync(user, LedgerKinds.Adjustment, -2_500_000);   // $0.50, under the default $1
        await RunAsync();
        await RunAsync();
        Assert.Equal(["low-balance"], await KindsAsync(email));
        var mail = (await app.MailToAsync(email)).Single();
        Assert.Contains("$0.50", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains("Warn me under: $1.00", mail.TextBody, StringComparison.Ordinal);

        await PostAsync(user, LedgerKinds.Purchase, 2_000_000);   // back to $2.50: re-armed
        await RunAsync();
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from low_balance_alerts where user_id = '{user}'"));
        Assert.Single(await KindsAsync(email));

        await PostAsync(user, LedgerKinds.Adjustment, -2_000_000);
        await RunAsync();
        Assert.Equal(["low-balance", "low-balance"], await KindsAsync(email));

        // Someone who switched it off gets none.
        var (quiet, quietEmail) = await UserAsync();
        await PostAsync(quiet, LedgerKinds.Grant, 100_000);
        await app.Database.ExecuteAsync($"""
            insert into alert_settings (user_id, notify70, notify90, notify100, hard_stop, low_balance_enabled, low_balance_micros, updated_at)
            values ('{quiet}', true, true, true, false, false, 1000000, now())
            """);
        await RunAsync();
        Assert.Empty(await KindsAsync(quietEmail));
    }

    [Fact]
    public async Task The_dashboard_shows_a_budget_banner_from_70_percent()
    {
        var (user, email) = await UserAsync();
        using var session = app.NewSession();
        Assert.Equal("/dashboard", (await session.LogInAsync(email, Password)).Headers.Location?.OriginalString);
        await PostAsync(user, LedgerKinds.Grant, 10_000_000);
        await SpendAsync(user, 6_000_000);
        Assert.DoesNotContain("budget-banner", await session.TextAsync("/dashboard"), StringComparison.Ordinal);

        await SpendAsync(user, 3_200_000);
        var html = await session.TextAsync("/dashboard");
        Assert.Contains("data-testid=\"budget-banner\"", html, StringComparison.Ordinal);
        Assert.Contains("You have used 92 % of your $10.00 monthly budget", html, StringComparison.Ordinal);
        Assert.Contains("href=\"/Account/Manage/Alerts\"", html, StringComparison.Ordinal);
        Assert.Contains("href=\"/billing\"", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_settings_page_validates_and_only_ever_changes_the_signed_in_users_own_settings()
    {
        using var anonymous = app.NewSession();
        var challenge = await anonymous.GetAsync("/Account/Manage/Alerts");
        Assert.Equal(HttpStatusCode.Redirect, challenge.StatusCode);
        Assert.StartsWith("/Account/Login", challenge.Headers.Location?.AbsolutePath, StringComparison.Ordinal);

        var (alice, aliceEmail) = await UserAsync();
        var (bob, bobEmail) = await UserAsync();
        using var aliceSession = app.NewSession();
        using var bobSession = app.NewSession();
        await aliceSession.LogInAsync(aliceEmail, Password);
        await bobSession.LogInAsync(bobEmail, Password);
        Assert.Contains("Usage alerts", await aliceSession.TextAsync("/Account/Manage"), StringComparison.Ordinal);   // in the settings nav

        Dictionary<string, string> Form(string budget, string lowBalance, bool lowOn = true) => new()
        {
            ["Input.MonthlyBudgetUsd"] = budget, ["Input.Notify70"] = "false", ["Input.Notify90"] = "true", ["Input.Notify100"] = "true",
            ["Input.HardStop"] = "true", ["Input.LowBalanceEnabled"] = lowOn ? "true" : "false", ["Input.LowBalanceUsd"] = lowBalance,
        };
        foreach (var (form, message) in new[]
        {
            (Form("-5", "3"), "The budget must be between"),
            (Form("abc", "3"), "MonthlyBudgetUsd"),
            (Form("12.345", "3"), "Use whole cents"),
            (Form("20", ""), "Enter the amount, or untick"),
            (Form("20", "0"), "The amount must be between"),
        })
        {
            var refused = await aliceSession.SubmitAsync("/Account/Manage/Alerts", form);
            Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
            Assert.Contains(message, await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from alert_settings where user_id = '{alice}'"));

        var saved = await aliceSession.SubmitAsync("/Account/Manage/Alerts", Form("25.50", "3"));
        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        Assert.Equal("25500000|false|true|true|true|3000000", await app.Database.ScalarAsync<string>($"""
            select concat_ws('|', monthly_budget_micros, notify70::text, notify90::text, notify100::text, hard_stop::text, low_balance_micros)
            from alert_settings where user_id = '{alice}'
            """));
        Assert.Contains("value=\"25.5\"", await aliceSession.TextAsync("/Account/Manage/Alerts"), StringComparison.Ordinal);

        // Bob's page shows his own (default) settings, and his save touches only his row.
        var bobPage = await bobSession.TextAsync("/Account/Manage/Alerts");
        Assert.DoesNotContain("value=\"25.5\"", bobPage, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await bobSession.SubmitAsync("/Account/Manage/Alerts", Form("", "1", lowOn: false))).StatusCode);
        Assert.Equal(25_500_000, await app.Database.ScalarAsync<long>($"select monthly_budget_micros from alert_settings where user_id = '{alice}'"));
        Assert.Null(await app.Database.ScalarAsync<long?>($"select monthly_budget_micros from alert_settings where user_id = '{bob}'"));
        Assert.False(await app.Database.ScalarAsync<bool>($"select low_balance_enabled from alert_settings where user_id = '{bob}'"));
    }
}
