using System.Security.Cryptography;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>The app with a vault KEK and an OpenAI provider that has no configuration key (nothing here calls it).</summary>
public sealed class VaultRunningApp : RunningApp
{
    protected override IReadOnlyDictionary<string, string> ExtraEnvironment { get; } = new Dictionary<string, string>
    {
        ["Vault__Kek"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        ["Providers__openai__Kind"] = "openai",
        ["Providers__openai__BaseUrl"] = "http://127.0.0.1:9/v1",
    };
}

/// <summary>
/// The demo admin opens Provider keys from the admin navigation, sees that openai has no key, adds one through the
/// password field, sees only its last 4 characters, then retires it. Screenshots: admin-provider-keys-01.png (no key),
/// admin-provider-keys-02.png (the key added).
/// </summary>
public sealed class AdminProviderKeysTests(VaultRunningApp app, Browser browser) : IClassFixture<VaultRunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task An_admin_adds_a_provider_key_sees_only_its_last_four_characters_and_retires_it()
    {
        const string secret = "sk-e2e-provider-key-abcdef9876";
        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(page, "admin@aigate.local", "aigate-admin-demo");
        await Expect(page, "Dashboard");
        await page.GotoAsync("/Admin");
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Admin" }).GetByRole(AriaRole.Link, new() { Name = "Provider keys" }).ClickAsync();
        await Expect(page, "Provider keys");
        await Assertions.Expect(page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "openai has no key" })).ToBeVisibleAsync();
        await Browser.ScreenshotAsync(page, "admin-provider-keys-01");

        await page.GetByLabel("Provider").SelectOptionAsync("openai");
        await page.GetByLabel("Label (optional)").FillAsync("e2e key");
        var field = page.GetByLabel("Key", new() { Exact = true });
        Assert.Equal("password", await field.GetAttributeAsync("type"));
        await field.FillAsync(secret);
        await page.GetByRole(AriaRole.Button, new() { Name = "Add key" }).ClickAsync();

        await Assertions.Expect(page.GetByTestId("provider-key-notice")).ToContainTextAsync("ending in 9876");
        var row = page.GetByTestId("provider-key-row").Filter(new() { HasText = "e2e key" });
        await Assertions.Expect(row).ToContainTextAsync("…9876");
        await Assertions.Expect(row).ToContainTextAsync("active");
        Assert.DoesNotContain("provider-key-abcdef", await page.ContentAsync(), StringComparison.Ordinal);
        Assert.Equal("", await page.GetByLabel("Key", new() { Exact = true }).InputValueAsync());
        await Browser.ScreenshotAsync(page, "admin-provider-keys-02");

        await row.GetByRole(AriaRole.Button, new() { Name = "Retire" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("provider-key-notice")).ToContainTextAsync("Key retired");
        await Assertions.Expect(page.GetByTestId("provider-key-row").Filter(new() { HasText = "e2e key" })).ToHaveCountAsync(0);
        Assert.Empty(errors);
    }
}
