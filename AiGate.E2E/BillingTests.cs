using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;

namespace AiGate.E2E;

/// <summary>
/// Buying credit in Chromium through the local TEST checkout (the app runs in Development without a Stripe
/// key): from /billing, pay on the TEST page, which posts the signed event to the app's own webhook; the
/// balance rises on the dashboard and the purchase is in the history. Screenshots: billing-01 … billing-04.
/// </summary>
public sealed class BillingTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task A_confirmed_user_buys_a_credit_pack_through_the_local_test_checkout()
    {
        var email = $"e2e-billing-{Guid.NewGuid():N}@example.com";
        const string password = "a long enough passphrase";
        await app.RunVerbForOutputAsync("create-user", "--email", email, "--password", password);

        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await Steps.LogInAsync(page, email, password);
        await page.WaitForURLAsync("**/dashboard");
        await Steps.Expect(page, "Dashboard");
        Assert.Equal("$0.00", (await page.GetByTestId("balance-usd").InnerTextAsync()).Trim());

        await page.GetByRole(AriaRole.Link, new() { Name = "Billing", Exact = true }).ClickAsync();
        await page.WaitForURLAsync("**/billing");
        await Steps.Expect(page, "Billing");
        Assert.Contains("TEST MODE", await page.GetByTestId("test-mode").InnerTextAsync(), StringComparison.Ordinal);
        await page.GetByTestId("pack-pack-25").CheckAsync();
        await Browser.ScreenshotAsync(page, "billing-01-choose");
        await page.GetByTestId("buy").ClickAsync();

        await page.WaitForURLAsync("**/billing/test-checkout?session=*");
        await Steps.Expect(page, "TEST checkout");
        Assert.Contains("TEST MODE", await page.GetByTestId("test-banner").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal("$25.00", (await page.GetByTestId("test-amount").InnerTextAsync()).Trim());
        await Browser.ScreenshotAsync(page, "billing-02-test-checkout");
        await page.GetByTestId("test-pay").ClickAsync();

        await page.WaitForURLAsync("**/billing/success?session_id=*");
        await Steps.Expect(page, "Payment received");
        Assert.Equal("$25.00", (await page.GetByTestId("success-balance").InnerTextAsync()).Trim());
        await Browser.ScreenshotAsync(page, "billing-03-success");

        await page.GotoAsync("/dashboard");
        Assert.Equal("$25.00", (await page.GetByTestId("balance-usd").InnerTextAsync()).Trim());

        await page.GotoAsync("/billing");
        Assert.Equal("$25.00", (await page.GetByTestId("billing-balance").InnerTextAsync()).Trim());
        var row = page.GetByTestId("history-row").First;
        var text = await row.InnerTextAsync();
        Assert.Contains("credit pack pack-25", text, StringComparison.Ordinal);
        Assert.Contains("+25.00", text, StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "billing-04-history");
        Assert.Empty(errors);   // no CSP violations or script errors
    }
}
