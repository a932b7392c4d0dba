using System.Text.RegularExpressions;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// A newcomer's path to a first streamed answer: sign up, confirm from the Development mailbox, log
/// in, create a key on /keys, read it from the shown-once panel, get credit (the grant-credits verb,
/// as there is no payment flow in Development yet), and stream a chat completion with the official
/// openai npm package. Screenshots: TestResults/screenshots/keys-*.png.
/// </summary>
public sealed partial class SignUpAndCreateKeyTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task Newcomer_signs_up_creates_a_key_and_streams_with_the_openai_npm_package()
    {
        var email = $"newcomer-{Guid.NewGuid():N}@example.com";
        const string password = "a long enough passphrase";
        var (page, consoleErrors) = await browser.NewPageAsync(app.BaseUrl);

        // Sign up.
        await page.GotoAsync("/");
        await page.GetByRole(AriaRole.Link, new() { Name = "Sign up" }).ClickAsync();
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await page.GetByLabel("Confirm password", new() { Exact = true }).FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await Expect(page, "Check your inbox");

        // Confirm: the login page links the local mailbox in Development.
        await page.GotoAsync("/Account/Login");
        await page.GetByRole(AriaRole.Link, new() { Name = "local mailbox" }).ClickAsync();
        var confirmation = await OpenMailAsync(page, $"Confirm your e-mail address for AiGate to {email}");
        await confirmation.GetByRole(AriaRole.Link, new() { Name = "Confirm your e-mail" }).ClickAsync();
        await Expect(page, "E-mail confirmed");

        // Log in and open Keys from the navigation.
        await page.GetByRole(AriaRole.Link, new() { Name = "Log in" }).Last.ClickAsync();
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page, "Dashboard");
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Keys", Exact = true }).ClickAsync();
        await Expect(page, "API keys");
        Assert.True(await page.GetByText("No keys yet.").IsVisibleAsync());
        await Browser.ScreenshotAsync(page, "keys-01-empty");

        // Create a key; it is shown once, with a copy button and the lines to paste.
        await page.GetByLabel("Name", new() { Exact = true }).FillAsync("my laptop");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Your new key “my laptop”" }).WaitForAsync();
        var key = (await page.GetByTestId("new-key").InnerTextAsync()).Trim();
        Assert.Matches(KeyPattern(), key);
        Assert.True(await page.GetByText("This is the only time the key is shown").IsVisibleAsync());
        var snippet = await page.GetByRole(AriaRole.Region, new() { Name = "Environment variables for an OpenAI SDK" }).InnerTextAsync();
        Assert.Contains($"OPENAI_BASE_URL={app.BaseUrl.ToString().TrimEnd('/')}/api/v1", snippet, StringComparison.Ordinal);
        Assert.Contains($"OPENAI_API_KEY={key}", snippet, StringComparison.Ordinal);
        Assert.True(await page.GetByRole(AriaRole.Button, new() { Name = "Copy" }).CountAsync() >= 2, "copy buttons on the key and the snippet");
        await Browser.ScreenshotAsync(page, "keys-02-created-shown-once");

        // Credit for the first calls: no payment flow in Development yet, so the operator's verb grants it.
        var grant = await app.RunVerbAsync("grant-credits", "--email", email, "--usd", "5", "--reason", "e2e");
        Assert.True(grant.ExitCode == 0, grant.ToString());

        // The official openai npm package, streaming through the key read from the page.
        var prompt = "hello from a newcomer";
        var node = await ChildProcess.NodeAsync("stream.mjs", app.BaseUrl.ToString(), key, prompt);
        Assert.True(node.ExitCode == 0, $"{node}\n{app.Log}");
        Assert.Equal($"Echo: {prompt}", node.Output.Trim());
        Assert.Matches(@"chunks: ([2-9]|\d\d+)", node.Errors);   // really streamed, in several chunks

        // A reload lists the key as prefix…last4 and never shows it again.
        await page.ReloadAsync();
        await Expect(page, "API keys");
        Assert.Equal(0, await page.GetByTestId("new-key").CountAsync());
        Assert.DoesNotContain(key, await page.ContentAsync(), StringComparison.Ordinal);
        var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = "my laptop" });
        Assert.Contains($"{key[..12]}…{key[^4..]}", await row.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("active", await row.InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "keys-03-list");

        Assert.Empty(consoleErrors);   // includes Content-Security-Policy violations
    }

    [GeneratedRegex("^ag_(test|live)_[0-9A-Za-z]{49}$")]
    private static partial Regex KeyPattern();
}
