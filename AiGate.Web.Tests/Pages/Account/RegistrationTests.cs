using System.Net;
using AiGate.Web.Features.Email;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Pages.Account;

public sealed class RegistrationTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Sign_up_confirm_and_log_in()
    {
        using var session = await app.RegisterConfirmAndLogInAsync("ada@example.com", "correct horse battery");

        var account = await session.TextAsync("/Account/Manage");
        Assert.Contains("ada@example.com (confirmed)", account, StringComparison.Ordinal);
        var user = await app.FindUserAsync("ada@example.com");
        Assert.True(user!.EmailConfirmed);
        Assert.StartsWith("AQAAAA", user.PasswordHash, StringComparison.Ordinal);   // Identity V3 hash format
    }

    [Fact]
    public async Task The_user_and_its_confirmation_mail_are_written_together()
    {
        using var session = app.NewSession();
        await session.SubmitAsync("/Account/Register", new() { ["Input.Email"] = "grace@example.com", ["Input.Password"] = "hopper1906", ["Input.ConfirmPassword"] = "hopper1906" });

        var user = await app.FindUserAsync("grace@example.com");
        var mail = Assert.Single(await app.MailToAsync("grace@example.com"));
        Assert.Equal(user!.Id, mail.UserId);
        Assert.Equal("confirm-email", mail.Kind);
        Assert.Equal(OutboxStatus.Pending, mail.Status);
        Assert.Contains("https://localhost/Account/ConfirmEmail?userId=", mail.TextBody, StringComparison.Ordinal);
        Assert.Contains("Confirm your e-mail", mail.HtmlBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unconfirmed_account_answers_alike_for_right_and_wrong_passwords_and_wrong_ones_lock_it()
    {
        await app.CreateUserAsync("unconfirmed@example.com", "password123", confirmed: false);
        using var session = app.NewSession();

        var right = await (await session.LogInAsync("unconfirmed@example.com", "password123")).Content.ReadAsStringAsync();
        var wrong = await (await session.LogInAsync("unconfirmed@example.com", "not-the-password")).Content.ReadAsStringAsync();
        var unknown = await (await session.LogInAsync("nobody-at-all@example.com", "password123")).Content.ReadAsStringAsync();

        // The right password is no oracle: the same failure, and the same hint to confirm, after every failure.
        foreach (var page in new[] { right, wrong, unknown })
        {
            Assert.Contains("Wrong e-mail or password", page, StringComparison.Ordinal);
            Assert.Contains("data-testid=\"login-confirm-hint\"", page, StringComparison.Ordinal);
            Assert.DoesNotContain("Confirm your e-mail address first", page, StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.Redirect, (await session.GetAsync("/Account/Manage")).StatusCode);   // still signed out

        // Wrong passwords count towards lockout as for any account: four more make five, then even the right one is refused.
        for (var i = 0; i < 3; i++) await session.LogInAsync("unconfirmed@example.com", "not-the-password");
        Assert.Equal("/Account/Lockout", (await session.LogInAsync("unconfirmed@example.com", "not-the-password")).Headers.Location?.OriginalString);
        Assert.Equal("/Account/Lockout", (await session.LogInAsync("unconfirmed@example.com", "password123")).Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Registering_a_known_address_answers_exactly_like_a_new_one()
    {
        await app.CreateUserAsync("taken@example.com", "password123");
        using var known = app.NewSession();
        using var unknown = app.NewSession();

        var a = await known.SubmitAsync("/Account/Register", new() { ["Input.Email"] = "taken@example.com", ["Input.Password"] = "another-password", ["Input.ConfirmPassword"] = "another-password" });
        var b = await unknown.SubmitAsync("/Account/Register", new() { ["Input.Email"] = "fresh@example.com", ["Input.Password"] = "another-password", ["Input.ConfirmPassword"] = "another-password" });

        Assert.Equal(a.StatusCode, b.StatusCode);
        Assert.Equal(a.Headers.Location, b.Headers.Location);
        var pageA = (await known.TextAsync("/Account/RegisterConfirmation")).Replace("taken@example.com", "X", StringComparison.Ordinal);
        var pageB = (await unknown.TextAsync("/Account/RegisterConfirmation")).Replace("fresh@example.com", "X", StringComparison.Ordinal);
        Assert.Equal(Normalize(pageA), Normalize(pageB));
        // The owner of the known address hears about it; no second account exists.
        Assert.Equal("already-registered", (await app.MailToAsync("taken@example.com")).Last().Kind);
    }

    [Fact]
    public async Task Posting_a_form_without_the_antiforgery_token_is_refused()
    {
        using var session = app.NewSession();
        var response = await session.Http.PostAsync("/Account/Register", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Email"] = "csrf@example.com", ["Input.Password"] = "password123", ["Input.ConfirmPassword"] = "password123",
        }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(await app.FindUserAsync("csrf@example.com"));
    }

    [Fact]
    public async Task Resend_confirmation_sends_a_new_link_that_works()
    {
        await app.CreateUserAsync("later@example.com", "password123", confirmed: false);
        using var session = app.NewSession();

        await session.SubmitAsync("/Account/ResendConfirmation", new() { ["Input.Email"] = "later@example.com" });
        await session.SubmitAsync("/Account/ResendConfirmation", new() { ["Input.Email"] = "nobody@example.com" });
        var confirm = await session.TextAsync(await app.LinkInMailAsync("later@example.com", "confirm-email"));

        Assert.Contains("E-mail confirmed", confirm, StringComparison.Ordinal);
        Assert.Empty(await app.MailToAsync("nobody@example.com"));
    }

    [Fact]
    public async Task Weak_rules_are_not_imposed_but_length_is()
    {
        using var session = app.NewSession();
        var shortOne = await session.SubmitAsync("/Account/Register", new() { ["Input.Email"] = "short@example.com", ["Input.Password"] = "1234567", ["Input.ConfirmPassword"] = "1234567" });
        var longOne = new string('a', 40) + " " + new string('b', 40);
        var passphrase = await session.SubmitAsync("/Account/Register", new() { ["Input.Email"] = "long@example.com", ["Input.Password"] = longOne, ["Input.ConfirmPassword"] = longOne });

        Assert.Equal(HttpStatusCode.OK, shortOne.StatusCode);   // the form again, with the error
        Assert.Null(await app.FindUserAsync("short@example.com"));
        Assert.Equal(HttpStatusCode.Redirect, passphrase.StatusCode);   // 81 characters, lower case only: accepted as is
        Assert.NotNull(await app.FindUserAsync("long@example.com"));
    }

    /// <summary>Antiforgery tokens and request ids differ per response by design.</summary>
    private static string Normalize(string html) => System.Text.RegularExpressions.Regex.Replace(html, "value=\"[^\"]{40,}\"", "value=\"…\"");

    [Theory]
    [InlineData("/Account/Register")]
    [InlineData("/Account/Login")]
    [InlineData("/Account/ForgotPassword")]
    [InlineData("/Account/ResendConfirmation")]
    public async Task A_form_posted_with_an_empty_address_is_shown_again_with_the_reason(string page)
    {
        using var session = app.NewSession();

        var response = await session.SubmitAsync(page, new() { ["Input.Email"] = "", ["Input.Password"] = "password123", ["Input.ConfirmPassword"] = "password123" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);   // the form again, not an error page (an empty field binds as null)
        Assert.Contains("The E-mail field is required.", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
