using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;

namespace AiGate.E2E;

/// <summary>
/// Buying credit the way it happens in production: the app in Production behind a TLS edge, Stripe on another
/// origin. Chromium applies the content security policy's <c>form-action</c> to the redirect that follows the
/// billing form's POST, so "Continue to checkout" must be allowed to lead to Stripe's (here: the fake's) origin.
/// Subscribe (Checkout in subscription mode) and Manage (the Billing Portal) are form POSTs with the same kind of redirect.
/// Screenshots: production-checkout-01 … 04.
/// </summary>
public sealed class ProductionCheckoutTests(ProductionStack stack, Browser browser) : IClassFixture<ProductionStack>, IClassFixture<Browser>
{
    [Fact]
    public async Task Checkout_subscribe_and_manage_lead_to_Stripe_on_its_own_origin_and_the_paid_pack_is_credited()
    {
        var email = $"e2e-prod-checkout-{Guid.NewGuid():N}@example.com";
        const string password = "a long enough passphrase";
        await stack.App.RunVerbForOutputAsync("create-user", "--email", email, "--password", password);

        var (page, errors) = await browser.NewPageAsync(stack.BaseUrl, ignoreHttpsErrors: true);
        await Steps.LogInAsync(page, email, password);
        await page.WaitForURLAsync("**/dashboard");

        await page.GotoAsync("/billing");
        await Steps.Expect(page, "Billing");
        Assert.Equal(0, await page.GetByTestId("test-mode").CountAsync());   // real (fake) Stripe, no TEST checkout
        await page.GetByTestId("pack-pack-25").CheckAsync();
        await Browser.ScreenshotAsync(page, "production-checkout-01-choose");
        await page.GetByTestId("buy").ClickAsync();

        var checkout = stack.Stripe.BaseUrl.GetLeftPart(UriPartial.Authority) + "/c/pay/";
        await ArriveAsync(page, errors, checkout);
        await Steps.Expect(page, "Fake Stripe Checkout");
        Assert.Equal("$25.00", (await page.GetByTestId("fake-checkout-amount").InnerTextAsync()).Trim());
        await Browser.ScreenshotAsync(page, "production-checkout-02-stripe");
        await page.GetByTestId("fake-checkout-pay").ClickAsync();

        // The fake delivered the signed checkout.session.completed through the edge, then sent the browser back.
        await page.WaitForURLAsync(stack.BaseUrl.GetLeftPart(UriPartial.Authority) + "/billing/success?session_id=*");
        await Steps.Expect(page, "Payment received");
        Assert.Equal("$25.00", (await page.GetByTestId("success-balance").InnerTextAsync()).Trim());
        await Browser.ScreenshotAsync(page, "production-checkout-03-success");

        await page.GotoAsync("/billing");
        Assert.Equal("$25.00", (await page.GetByTestId("billing-balance").InnerTextAsync()).Trim());
        Assert.Contains("credit pack pack-25", await page.GetByTestId("history-row").First.InnerTextAsync(), StringComparison.Ordinal);

        // Subscribe: the same form-action rule, to Checkout in subscription mode.
        await page.GetByTestId("plan-starter").GetByRole(AriaRole.Button, new() { Name = "Subscribe" }).ClickAsync();
        await ArriveAsync(page, errors, checkout);
        Assert.Equal("$10.00", (await page.GetByTestId("fake-checkout-amount").InnerTextAsync()).Trim());
        await page.GetByTestId("fake-checkout-pay").ClickAsync();
        await page.WaitForURLAsync(stack.BaseUrl.GetLeftPart(UriPartial.Authority) + "/billing/success?session_id=*");
        Assert.Contains("Your plan is active", await page.GetByTestId("success-message").InnerTextAsync(), StringComparison.Ordinal);

        // Manage: to the Billing Portal, Stripe's other origin, and back.
        await page.GotoAsync("/billing");
        Assert.Equal("Starter", (await page.GetByTestId("current-plan").InnerTextAsync()).Trim());
        await page.GetByTestId("manage-plan").ClickAsync();
        await ArriveAsync(page, errors, stack.Stripe.BaseUrl.GetLeftPart(UriPartial.Authority) + "/p/session/");
        await Steps.Expect(page, "Fake Stripe Billing Portal");
        await Browser.ScreenshotAsync(page, "production-checkout-04-portal");
        await page.GetByTestId("fake-portal-return").ClickAsync();
        await page.WaitForURLAsync("**/billing");
        Assert.True(errors.Count == 0, string.Join("\n", errors));   // no CSP violations or script errors
    }

    [Fact]
    public async Task The_app_does_not_name_its_server()
    {
        // Straight to the app's own Kestrel (the edge in front is the test's), as Fly's proxy reaches it.
        using var client = new HttpClient { BaseAddress = stack.App.BaseUrl };
        foreach (var path in new[] { "/", "/api/v1/models", "/healthz" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Add("X-Forwarded-Proto", "https");
            using var response = await client.SendAsync(request);
            Assert.True(response.IsSuccessStatusCode || (int)response.StatusCode == 401, $"{path}: {(int)response.StatusCode}");
            Assert.False(response.Headers.Contains("Server"), $"{path} names its server: {string.Join(", ", response.Headers.Server)}");
        }
    }

    /// <summary>Waits until the browser is on a page under <paramref name="prefix"/> (another origin); says what blocked it if not.</summary>
    private static async Task ArriveAsync(IPage page, List<string> errors, string prefix)
    {
        try
        {
            // Arriving is the navigation committing to the other origin (a refused form-action never commits); the page's
            // load is waited for by the steps that read it, on a loaded machine it can take longer than the arrival.
            await page.WaitForURLAsync(url => url.StartsWith(prefix, StringComparison.Ordinal), new() { Timeout = 30_000, WaitUntil = WaitUntilState.Commit });
        }
        catch (TimeoutException)
        {
            Assert.Fail($"The browser stayed on {page.Url} instead of reaching {prefix}…; console: {string.Join(" | ", errors)}");
        }
    }
}
