using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// A user opens Provider keys from the dashboard's navigation, adds their own OpenAI key through a password field (only its last
/// 4 characters come back, the field is empty again), is refused an OpenAI-compatible endpoint on a metadata address, turns
/// the fallback on, and deletes the key. Screenshots: byok-01-empty.png, byok-02-added.png, byok-03-ssrf-refused.png.
/// </summary>
public sealed class ByokProviderKeysTests(VaultRunningApp app, Browser browser) : IClassFixture<VaultRunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task A_user_adds_their_own_openai_key_sees_only_its_last_four_is_refused_a_private_endpoint_and_deletes_the_key()
    {
        const string secret = "sk-e2e-byok-user-key-qwerty4321";
        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(page, "demo@aigate.local", "aigate-demo-user");
        await Expect(page, "Dashboard");
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Dashboard" }).GetByRole(AriaRole.Link, new() { Name = "Provider keys" }).ClickAsync();
        await Expect(page, "Provider keys");
        await Assertions.Expect(page.GetByText("No provider keys yet")).ToBeVisibleAsync();
        await Browser.ScreenshotAsync(page, "byok-01-empty");

        await page.GetByLabel("Provider", new() { Exact = true }).SelectOptionAsync("openai");
        await page.GetByLabel("Label", new() { Exact = true }).FillAsync("my-openai");
        var field = page.GetByLabel("Key", new() { Exact = true });
        Assert.Equal("password", await field.GetAttributeAsync("type"));
        await field.FillAsync(secret);
        await page.GetByRole(AriaRole.Button, new() { Name = "Save key" }).ClickAsync();

        await Assertions.Expect(page.GetByTestId("byok-status")).ToContainTextAsync("ending in 4321");
        var row = page.GetByTestId("byok-key-row").Filter(new() { HasText = "my-openai" });
        await Assertions.Expect(row).ToContainTextAsync("…4321");
        Assert.DoesNotContain("byok-user-key-qwerty", await page.ContentAsync(), StringComparison.Ordinal);
        Assert.Equal("", await page.GetByLabel("Key", new() { Exact = true }).InputValueAsync());
        await Browser.ScreenshotAsync(page, "byok-02-added");

        await page.GetByLabel("Provider", new() { Exact = true }).SelectOptionAsync("custom");
        await page.GetByLabel("Label", new() { Exact = true }).FillAsync("metadata");
        await page.GetByLabel("Base URL (OpenAI-compatible endpoints only)").FillAsync("https://169.254.169.254/latest");
        await page.GetByLabel("Key", new() { Exact = true }).FillAsync("sk-e2e-never-shown-5555");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save key" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "internal address" })).ToBeVisibleAsync();
        Assert.DoesNotContain("never-shown", await page.ContentAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "byok-03-ssrf-refused");

        await row.GetByRole(AriaRole.Button, new() { Name = "Turn on" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("byok-status")).ToContainTextAsync("fall back to the platform");
        await page.GetByTestId("byok-key-row").Filter(new() { HasText = "my-openai" }).GetByRole(AriaRole.Button, new() { Name = "Delete “my-openai”" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("byok-status")).ToContainTextAsync("Deleted the key");
        await Assertions.Expect(page.GetByTestId("byok-key-row")).ToHaveCountAsync(0);
        Assert.Empty(errors);
    }
}
