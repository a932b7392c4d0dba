using System.Net;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Pages.Account;

public sealed class LoginTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Five_wrong_passwords_lock_the_account_even_for_the_right_one()
    {
        await app.CreateUserAsync("locked@example.com", "the-right-password");
        using var session = app.NewSession();

        for (var i = 0; i < 5; i++)
            await session.LogInAsync("locked@example.com", "wrong-password");
        var sixth = await session.LogInAsync("locked@example.com", "the-right-password");

        Assert.Equal("/Account/Lockout", sixth.Headers.Location?.OriginalString);
        var user = await app.FindUserAsync("locked@example.com");
        Assert.True(user!.LockoutEnd > DateTimeOffset.UtcNow.AddMinutes(14), "locked for 15 minutes");
    }

    [Fact]
    public async Task Auth_cookie_is_host_prefixed_secure_httponly_and_lax_and_remember_me_makes_it_persistent()
    {
        await app.CreateUserAsync("cookie@example.com", "password123");
        using var session = app.NewSession();
        using var remembered = app.NewSession();

        var plain = await session.LogInAsync("cookie@example.com", "password123");
        var persistent = await remembered.LogInAsync("cookie@example.com", "password123", rememberMe: true);

        var cookie = Assert.Single(plain.Headers.GetValues("Set-Cookie"), c => c.StartsWith("__Host-aigate=", StringComparison.Ordinal));
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("domain=", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("expires=", cookie, StringComparison.OrdinalIgnoreCase);   // a session cookie
        Assert.Contains("expires=", persistent.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("__Host-aigate=", StringComparison.Ordinal)),
            StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Log_out_ends_the_session()
    {
        await app.CreateUserAsync("bye@example.com", "password123");
        using var session = app.NewSession();
        await session.LogInAsync("bye@example.com", "password123");
        Assert.Equal(HttpStatusCode.OK, (await session.GetAsync("/Account/Manage")).StatusCode);

        var logout = await session.SubmitAsync("/Account/Manage", new(), "/Account/Logout");

        Assert.Equal(HttpStatusCode.Redirect, logout.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await session.GetAsync("/Account/Manage")).StatusCode);
    }

    [Fact]
    public async Task Return_url_must_be_local()
    {
        await app.CreateUserAsync("redirect@example.com", "password123");
        using var session = app.NewSession();

        var response = await session.SubmitAsync("/Account/Login?returnUrl=https%3A%2F%2Fevil.example%2F",
            new() { ["Input.Email"] = "redirect@example.com", ["Input.Password"] = "password123" });

        Assert.Equal("/dashboard", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Admin_area_is_for_admins_only()
    {
        await app.CreateUserAsync("user@example.com", "password123");
        await app.CreateUserAsync("boss@example.com", "password123", admin: true);
        using var anonymous = app.NewSession();
        using var user = app.NewSession();
        using var admin = app.NewSession();
        await user.LogInAsync("user@example.com", "password123");
        await admin.LogInAsync("boss@example.com", "password123");

        Assert.StartsWith("/Account/Login", (await anonymous.GetAsync("/Admin")).Headers.Location?.AbsolutePath, StringComparison.Ordinal);
        Assert.StartsWith("/Account/AccessDenied", (await user.GetAsync("/Admin/Users")).Headers.Location?.AbsolutePath, StringComparison.Ordinal);
        Assert.StartsWith("/Account/AccessDenied", (await user.GetAsync("/Admin/Mailbox")).Headers.Location?.AbsolutePath, StringComparison.Ordinal);   // open only in Development
        var users = await admin.TextAsync("/Admin/Users?q=BOSS");
        Assert.Contains("boss@example.com", users, StringComparison.Ordinal);
        Assert.DoesNotContain("user@example.com", users, StringComparison.Ordinal);
        Assert.Contains(">Admin</a>", await admin.TextAsync("/Account/Manage"), StringComparison.Ordinal);
        Assert.DoesNotContain(">Admin</a>", await user.TextAsync("/Account/Manage"), StringComparison.Ordinal);
    }
}
