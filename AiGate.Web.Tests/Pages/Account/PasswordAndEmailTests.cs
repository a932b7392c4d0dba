using System.Net;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Pages.Account;

public sealed class PasswordAndEmailTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Forgot_password_mails_a_single_use_link_that_resets_it()
    {
        await app.CreateUserAsync("forgot@example.com", "old-password");
        using var session = app.NewSession();

        var asked = await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "forgot@example.com" });
        var link = await app.LinkInMailAsync("forgot@example.com", "reset-password");
        var reset = await session.SubmitAsync(link, new() { ["Input.Password"] = "new-password", ["Input.ConfirmPassword"] = "new-password" });
        var reused = await session.SubmitAsync(link, new() { ["Input.Password"] = "third-password", ["Input.ConfirmPassword"] = "third-password" });

        Assert.Equal("/Account/ForgotPasswordConfirmation", asked.Headers.Location?.OriginalString);
        Assert.Equal("/Account/ResetPasswordConfirmation", reset.Headers.Location?.OriginalString);
        Assert.Contains("invalid, was used already, or has expired", await reused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("/dashboard", (await session.LogInAsync("forgot@example.com", "new-password")).Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task An_address_someone_else_signed_up_with_is_taken_back_by_resetting_the_password_which_confirms_it()
    {
        const string email = "pre-registered@example.com";
        using var attacker = app.NewSession();
        var registered = await attacker.SubmitAsync("/Account/Register",
            new() { ["Input.Email"] = email, ["Input.Password"] = "attackers-password", ["Input.ConfirmPassword"] = "attackers-password" });
        Assert.Equal(HttpStatusCode.Redirect, registered.StatusCode);
        var before = await app.FindUserAsync(email);
        Assert.False(before!.EmailConfirmed);

        // The owner asks for a reset: it is mailed although the account is unconfirmed.
        using var owner = app.NewSession();
        await owner.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = email });
        var link = await app.LinkInMailAsync(email, "reset-password");
        var reset = await owner.SubmitAsync(link, new() { ["Input.Password"] = "owners-password", ["Input.ConfirmPassword"] = "owners-password" });
        Assert.Equal("/Account/ResetPasswordConfirmation", reset.Headers.Location?.OriginalString);

        var after = await app.FindUserAsync(email);
        Assert.True(after!.EmailConfirmed, "the reset link proved the mailbox");
        Assert.NotEqual(before.SecurityStamp, after.SecurityStamp);
        Assert.Equal("/dashboard", (await owner.LogInAsync(email, "owners-password")).Headers.Location?.OriginalString);
        Assert.Contains("Wrong e-mail or password", await (await attacker.LogInAsync(email, "attackers-password")).Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Forgot_password_answers_the_same_for_an_unknown_address()
    {
        await app.CreateUserAsync("known@example.com", "password123");
        using var session = app.NewSession();

        var known = await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "known@example.com" });
        var unknown = await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "unknown@example.com" });

        Assert.Equal(known.StatusCode, unknown.StatusCode);
        Assert.Equal(known.Headers.Location, unknown.Headers.Location);
        Assert.Empty(await app.MailToAsync("unknown@example.com"));
    }

    [Fact]
    public async Task Changing_the_password_signs_out_other_sessions()
    {
        await app.CreateUserAsync("change@example.com", "old-password");
        using var a = app.NewSession();
        using var b = app.NewSession();
        await a.LogInAsync("change@example.com", "old-password");
        await b.LogInAsync("change@example.com", "old-password");

        var changed = await a.SubmitAsync("/Account/Manage/Security",
            new() { ["Input.CurrentPassword"] = "old-password", ["Input.NewPassword"] = "new-password", ["Input.ConfirmPassword"] = "new-password" },
            "/Account/Manage/Security?handler=ChangePassword");

        Assert.Equal(HttpStatusCode.Redirect, changed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await a.GetAsync("/Account/Manage")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await b.GetAsync("/Account/Manage")).StatusCode);
    }

    [Fact]
    public async Task Sign_out_everywhere_keeps_only_this_session()
    {
        await app.CreateUserAsync("everywhere@example.com", "password123");
        using var a = app.NewSession();
        using var b = app.NewSession();
        await a.LogInAsync("everywhere@example.com", "password123");
        await b.LogInAsync("everywhere@example.com", "password123");

        await a.SubmitAsync("/Account/Manage/Security", new(), "/Account/Manage/Security?handler=SignOutEverywhere");

        Assert.Equal(HttpStatusCode.OK, (await a.GetAsync("/Account/Manage")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await b.GetAsync("/Account/Manage")).StatusCode);
    }

    [Fact]
    public async Task Changing_the_email_needs_the_password_and_a_click_from_the_new_address()
    {
        await app.CreateUserAsync("old@example.com", "password123");
        using var session = app.NewSession();
        await session.LogInAsync("old@example.com", "password123");

        var wrong = await session.SubmitAsync("/Account/Manage/Email", new() { ["Input.NewEmail"] = "new@example.com", ["Input.CurrentPassword"] = "nope" });
        Assert.Contains("not your current password", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await session.SubmitAsync("/Account/Manage/Email", new() { ["Input.NewEmail"] = "new@example.com", ["Input.CurrentPassword"] = "password123" });
        Assert.NotNull(await app.FindUserAsync("old@example.com"));   // nothing changes before the click

        var confirmed = await session.TextAsync(await app.LinkInMailAsync("new@example.com", "confirm-email-change"));

        Assert.Contains("E-mail address changed", confirmed, StringComparison.Ordinal);
        Assert.Null(await app.FindUserAsync("old@example.com"));
        Assert.Equal("new@example.com", (await app.FindUserAsync("new@example.com"))!.UserName);
        Assert.Equal("email-changed", (await app.MailToAsync("old@example.com")).Last().Kind);
        using var fresh = app.NewSession();
        Assert.Equal("/dashboard", (await fresh.LogInAsync("new@example.com", "password123")).Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Deleting_the_account_needs_the_password_and_removes_it_with_its_mail()
    {
        await app.CreateUserAsync("leaving@example.com", "password123");
        using var session = app.NewSession();
        await session.LogInAsync("leaving@example.com", "password123");
        await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "leaving@example.com" });
        var page = await session.TextAsync("/Account/Manage/Delete");
        Assert.Contains("remaining credit balance is forfeited", page, StringComparison.Ordinal);

        var wrong = await session.SubmitAsync("/Account/Manage/Delete", new() { ["Input.Password"] = "nope", ["Input.Understood"] = "true" });
        Assert.NotNull(await app.FindUserAsync("leaving@example.com"));
        Assert.Equal(HttpStatusCode.OK, wrong.StatusCode);
        var deleted = await session.SubmitAsync("/Account/Manage/Delete", new() { ["Input.Password"] = "password123", ["Input.Understood"] = "true" });

        Assert.Equal("/Account/Deleted", deleted.Headers.Location?.OriginalString);
        Assert.Null(await app.FindUserAsync("leaving@example.com"));
        Assert.Empty(await app.MailToAsync("leaving@example.com"));
        Assert.Contains("Wrong e-mail or password", await (await session.LogInAsync("leaving@example.com", "password123")).Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
