using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// The demo admin finds the demo user on the Users page, opens their page, grants credit with a reason and suspends
/// the account; the user then sees why on their dashboard; the admin lifts the suspension. Screenshots:
/// admin-users-01.png (the Users list, searched), admin-user-01.png (the user page after a grant and a suspension,
/// with the audit history), admin-user-02.png (the user's dashboard while suspended).
/// </summary>
public sealed class AdminUsersTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task An_admin_finds_a_user_grants_credit_suspends_them_and_the_user_sees_why()
    {
        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(page, "admin@aigate.local", "aigate-admin-demo");
        await Expect(page, "Dashboard");

        await page.GotoAsync("/admin/users");
        await Expect(page, "Users");
        await page.GetByLabel("Search by e-mail").FillAsync("demo@");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        await page.WaitForURLAsync("**/admin/users?q=demo%40");
        Assert.Equal(1, await page.GetByTestId("user-row").CountAsync());
        await Browser.ScreenshotAsync(page, "admin-users-01");

        await page.GetByRole(AriaRole.Link, new() { Name = "demo@aigate.local" }).ClickAsync();
        await Expect(page, "demo@aigate.local");
        await page.GetByLabel("Amount in USD").FillAsync("2.50");
        await page.Locator("#credit-reason").FillAsync("Goodwill for the outage on the 3rd");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply" }).ClickAsync();
        Assert.Contains("Granted $2.50", await page.GetByTestId("admin-notice").InnerTextAsync(), StringComparison.Ordinal);

        await page.GetByLabel("Reason (shown to the user)").FillAsync("Unusual traffic; please contact support");
        await page.GetByRole(AriaRole.Button, new() { Name = "Suspend account" }).ClickAsync();
        Assert.Contains("Suspended", await page.GetByTestId("admin-notice").InnerTextAsync(), StringComparison.Ordinal);
        var history = await page.GetByTestId("audit-row").AllInnerTextsAsync();
        Assert.Contains(history, r => r.Contains("user.suspend", StringComparison.Ordinal) && r.Contains("admin@aigate.local", StringComparison.Ordinal));
        Assert.Contains(history, r => r.Contains("credit.grant", StringComparison.Ordinal) && r.Contains("Goodwill for the outage", StringComparison.Ordinal));
        await Browser.ScreenshotAsync(page, "admin-user-01");

        var (user, userErrors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(user, "demo@aigate.local", "aigate-demo-user");
        await Expect(user, "Dashboard");
        Assert.Contains("Your account is suspended: Unusual traffic; please contact support.", await user.GetByTestId("suspended").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(user, "admin-user-02");

        await page.Locator("#unsuspend-reason").FillAsync("Spoke to the customer");
        await page.GetByRole(AriaRole.Button, new() { Name = "Lift suspension" }).ClickAsync();
        Assert.Contains("Suspension lifted", await page.GetByTestId("admin-notice").InnerTextAsync(), StringComparison.Ordinal);
        await user.ReloadAsync();
        Assert.Equal(0, await user.GetByTestId("suspended").CountAsync());

        Assert.Empty(errors);   // no CSP violations or script errors
        Assert.Empty(userErrors);
    }
}
