using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Pages.Account;

public sealed partial class TwoFactorTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Enable_with_the_shown_key_then_log_in_with_a_code_and_with_a_recovery_code()
    {
        using var session = await app.RegisterConfirmAndLogInAsync("totp@example.com", "password123");
        var (key, codes) = await EnableAsync(session, "totp@example.com");
        Assert.Equal(10, codes.Count);
        Assert.Contains("two-factor-enabled", (await app.MailToAsync("totp@example.com")).Select(m => m.Kind));

        using var second = app.NewSession();
        var password = await second.LogInAsync("totp@example.com", "password123");
        Assert.StartsWith("/Account/LoginWith2fa", password.Headers.Location?.OriginalString, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await second.GetAsync("/Account/Manage")).StatusCode);   // not signed in yet

        // The code used to turn 2FA on is spent; the next step's code is within the ±1 window.
        var code = Code(key, +1);
        var signedIn = await second.SubmitAsync(password.Headers.Location!.OriginalString, new() { ["Input.TwoFactorCode"] = code });
        Assert.Equal("/dashboard", signedIn.Headers.Location?.OriginalString);

        using var third = app.NewSession();
        var step = await third.LogInAsync("totp@example.com", "password123");
        var recovery = await third.SubmitAsync("/Account/LoginWithRecoveryCode", new() { ["Input.RecoveryCode"] = codes[0] });
        Assert.Equal("/dashboard", recovery.Headers.Location?.OriginalString);
        Assert.Contains("<strong>9</strong> recovery code(s) left", await third.TextAsync("/Account/Manage/TwoFactor"), StringComparison.Ordinal);
        _ = step;

        using var fourth = app.NewSession();
        await fourth.LogInAsync("totp@example.com", "password123");
        var reused = await fourth.SubmitAsync("/Account/LoginWithRecoveryCode", new() { ["Input.RecoveryCode"] = codes[0] });
        Assert.Equal(HttpStatusCode.OK, reused.StatusCode);
        Assert.Contains("not valid, or it was used already", await reused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_code_works_once_and_wrong_codes_count_towards_lockout()
    {
        using var session = await app.RegisterConfirmAndLogInAsync("replay@example.com", "password123");
        var (key, _) = await EnableAsync(session, "replay@example.com");

        using var first = app.NewSession();
        var step = await first.LogInAsync("replay@example.com", "password123");
        var code = Code(key, +1);
        Assert.Equal(HttpStatusCode.Redirect, (await first.SubmitAsync(step.Headers.Location!.OriginalString, new() { ["Input.TwoFactorCode"] = code })).StatusCode);

        using var replay = app.NewSession();
        var again = await replay.LogInAsync("replay@example.com", "password123");
        var replayed = await replay.SubmitAsync(again.Headers.Location!.OriginalString, new() { ["Input.TwoFactorCode"] = code });
        Assert.Equal(HttpStatusCode.OK, replayed.StatusCode);
        Assert.Contains("That code is not valid", await replayed.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The replay was failure 1; four more wrong codes lock the account (RELIABILITY I2).
        HttpResponseMessage last = replayed;
        for (var i = 0; i < 4; i++)
            last = await replay.SubmitAsync(again.Headers.Location!.OriginalString, new() { ["Input.TwoFactorCode"] = "000000" });
        Assert.Equal("/Account/Lockout", last.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Turning_it_off_needs_the_password_and_sends_a_mail()
    {
        using var session = await app.RegisterConfirmAndLogInAsync("off@example.com", "password123");
        await EnableAsync(session, "off@example.com");

        var wrong = await session.SubmitAsync("/Account/Manage/TwoFactor", new() { ["Input.Password"] = "nope" }, "/Account/Manage/TwoFactor?handler=Disable");
        Assert.Contains("That is not your password", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var right = await session.SubmitAsync("/Account/Manage/TwoFactor", new() { ["Input.Password"] = "password123" }, "/Account/Manage/TwoFactor?handler=Disable");

        Assert.Equal(HttpStatusCode.Redirect, right.StatusCode);
        Assert.False((await app.FindUserAsync("off@example.com"))!.TwoFactorEnabled);
        Assert.Contains("two-factor-disabled", (await app.MailToAsync("off@example.com")).Select(m => m.Kind));
        Assert.Equal(HttpStatusCode.OK, (await session.GetAsync("/Account/Manage")).StatusCode);   // this session survived
    }

    private static async Task<(string Key, List<string> RecoveryCodes)> EnableAsync(WebSession session, string email)
    {
        var page = await session.TextAsync("/Account/Manage/EnableAuthenticator");
        var key = SharedKey().Match(page).Groups[1].Value.Replace(" ", "", StringComparison.Ordinal);
        Assert.Contains("data:image/png;base64,", page, StringComparison.Ordinal);
        var enabled = await session.SubmitAsync("/Account/Manage/EnableAuthenticator", new() { ["Input.Code"] = Code(key, 0) });
        Assert.Equal("/Account/Manage/ShowRecoveryCodes", enabled.Headers.Location?.OriginalString);
        var codes = RecoveryCode().Matches(await session.TextAsync("/Account/Manage/ShowRecoveryCodes")).Select(m => m.Groups[1].Value).ToList();
        _ = email;
        return (key, codes);
    }

    internal static string Code(string base32Key, int stepOffset) =>
        Totp.Code(Totp.FromBase32(base32Key), Totp.StepAt(DateTimeOffset.UtcNow) + stepOffset).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex("data-testid=\"shared-key\">([a-z0-9 ]+)<")]
    private static partial Regex SharedKey();

    [GeneratedRegex("<li><code>([^<]+)</code></li>")]
    private static partial Regex RecoveryCode();
}
