using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// A new user's whole account life in the browser: sign up, confirm from the mailbox, log in, turn on
/// 2FA with a code computed from the shown key, log out, log in with a code, reset the password from
/// the mailed link, log in with a recovery code. Screenshots of each page: TestResults/screenshots/account-*.png.
/// </summary>
public sealed class AccountFlowTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task Sign_up_confirm_log_in_with_2fa_and_reset_the_password()
    {
        var email = $"e2e-{Guid.NewGuid():N}@example.com";
        const string password = "a long enough passphrase";
        const string newPassword = "another long passphrase";
        var (page, _) = await browser.NewPageAsync(app.BaseUrl);

        // Sign up.
        await page.GotoAsync("/");
        await page.GetByRole(AriaRole.Link, new() { Name = "Sign up" }).ClickAsync();
        await Expect(page, "Create your account");
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await page.GetByLabel("Confirm password", new() { Exact = true }).FillAsync(password);
        await Browser.ScreenshotAsync(page, "account-01-register");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await Expect(page, "Check your inbox");
        await Browser.ScreenshotAsync(page, "account-02-check-your-inbox");

        // The confirmation mail, from the local mailbox.
        var confirmation = await OpenMailAsync(page, $"Confirm your e-mail address for AiGate to {email}");
        await Browser.ScreenshotAsync(page, "account-03-mailbox-confirmation");
        await confirmation.GetByRole(AriaRole.Link, new() { Name = "Confirm your e-mail" }).ClickAsync();
        await Expect(page, "E-mail confirmed");
        await Browser.ScreenshotAsync(page, "account-04-email-confirmed");

        // Log in.
        await page.GetByRole(AriaRole.Link, new() { Name = "Log in" }).Last.ClickAsync();
        await Expect(page, "Log in");
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await Browser.ScreenshotAsync(page, "account-05-login");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page, "Dashboard");   // a log-in lands on the dashboard
        await page.GetByRole(AriaRole.Link, new() { Name = "Account", Exact = true }).ClickAsync();
        await Expect(page, "Your account");
        await Browser.ScreenshotAsync(page, "account-06-account");

        // Turn on 2FA with the key the page shows.
        await page.GetByRole(AriaRole.Link, new() { Name = "Turn on" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Set up an authenticator app" }).ClickAsync();
        await Expect(page, "Set up an authenticator app");
        Assert.True(await page.GetByRole(AriaRole.Img, new() { Name = "QR code for your authenticator app" }).IsVisibleAsync());
        var key = (await page.GetByTestId("shared-key").InnerTextAsync()).Replace(" ", "", StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "account-07-enable-2fa");
        var enableStep = Totp.CurrentStep;
        await page.GetByLabel("Verification code").FillAsync(Totp.Code(key, enableStep));
        await page.GetByRole(AriaRole.Button, new() { Name = "Verify and turn on" }).ClickAsync();
        await Expect(page, "Two-factor authentication is on");
        var recoveryCodes = await page.GetByRole(AriaRole.List, new() { Name = "Recovery codes" }).Locator("code").AllInnerTextsAsync();
        Assert.Equal(10, recoveryCodes.Count);
        await Browser.ScreenshotAsync(page, "account-08-recovery-codes");
        await page.GetByRole(AriaRole.Link, new() { Name = "I have saved them" }).ClickAsync();

        // Log out, and back in with a code (the enabling code's step is spent: use the next one, within the ±1 window).
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await page.GotoAsync("/Account/Login");
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page, "Two-factor authentication");
        await page.GetByLabel("Authentication code").FillAsync(Totp.Code(key, Math.Max(enableStep, Totp.CurrentStep) + 1));
        await Browser.ScreenshotAsync(page, "account-09-login-with-2fa-code");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page, "Dashboard");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();

        // Forgot the password: reset it from the mailed link.
        await page.GotoAsync("/Account/Login");
        await page.GetByRole(AriaRole.Link, new() { Name = "Forgot your password?" }).ClickAsync();
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByRole(AriaRole.Button, new() { Name = "Send reset link" }).ClickAsync();
        await Expect(page, "Check your inbox");
        await Browser.ScreenshotAsync(page, "account-10-reset-link-sent");
        var reset = await OpenMailAsync(page, $"Reset your AiGate password to {email}");
        await Browser.ScreenshotAsync(page, "account-11-mailbox-reset");
        await reset.GetByRole(AriaRole.Link, new() { Name = "Reset your password" }).ClickAsync();
        await Expect(page, "Choose a new password");
        await page.GetByLabel("New password", new() { Exact = true }).FillAsync(newPassword);
        await page.GetByLabel("Confirm new password", new() { Exact = true }).FillAsync(newPassword);
        await Browser.ScreenshotAsync(page, "account-12-choose-new-password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set new password" }).ClickAsync();
        await Expect(page, "Password changed");
        await Browser.ScreenshotAsync(page, "account-13-password-changed");

        // The new password works; the second step this time with a recovery code.
        await page.GetByRole(AriaRole.Link, new() { Name = "Log in" }).Last.ClickAsync();
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(newPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Log in with a recovery code" }).ClickAsync();
        await page.GetByLabel("Recovery code").FillAsync(recoveryCodes[0]);
        await Browser.ScreenshotAsync(page, "account-14-login-with-recovery-code");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page, "Dashboard");
        await page.GotoAsync("/Account/Manage");
        Assert.Contains(email, await page.GetByRole(AriaRole.Main).InnerTextAsync(), StringComparison.Ordinal);
        await page.GotoAsync("/Account/Manage/Security");
        await Browser.ScreenshotAsync(page, "account-15-security-settings");
    }
}
