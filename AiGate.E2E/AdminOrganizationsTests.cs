using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// The demo admin opens Organizations from the admin navigation, finds the demo user's personal organization by e-mail,
/// opens it (members with roles, balance, ledger) and follows the owner to their user page, which lists the membership.
/// Screenshots: admin-organizations-01.png (the list, searched), admin-organization-01.png (one organization).
/// </summary>
public sealed class AdminOrganizationsTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task An_admin_finds_an_organization_by_a_members_email_and_opens_it_and_its_owner()
    {
        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(page, "admin@aigate.local", "aigate-admin-demo");
        await Expect(page, "Dashboard");

        await page.GotoAsync("/admin");
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Admin" }).GetByRole(AriaRole.Link, new() { Name = "Organizations" }).ClickAsync();
        await Expect(page, "Organizations");
        await page.GetByLabel("Search by name or a member's e-mail").FillAsync("demo@");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        await page.WaitForURLAsync("**/Admin/Organizations?q=demo%40");
        var row = page.GetByTestId("org-row");
        Assert.Equal(1, await row.CountAsync());
        Assert.Contains("personal", await row.InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "admin-organizations-01");

        await row.GetByRole(AriaRole.Link).ClickAsync();
        await Expect(page, "demo@aigate.local");
        Assert.Equal("personal", await page.GetByTestId("org-kind").InnerTextAsync());
        var member = page.GetByTestId("member-row");
        Assert.Equal(1, await member.CountAsync());
        Assert.Equal("owner", await member.GetByTestId("member-role").InnerTextAsync());
        await Browser.ScreenshotAsync(page, "admin-organization-01");

        await member.GetByRole(AriaRole.Link, new() { Name = "demo@aigate.local" }).ClickAsync();
        await Expect(page, "demo@aigate.local");
        Assert.Equal(1, await page.GetByTestId("membership-row").CountAsync());
        Assert.Empty(errors);   // no CSP violations or script errors
    }
}
