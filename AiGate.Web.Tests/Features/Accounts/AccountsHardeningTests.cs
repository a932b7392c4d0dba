using System.Net;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Infrastructure.Cli;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Tests.Features.Accounts;

public sealed class AccountsHardeningTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public void Passwords_are_hashed_with_at_least_210000_iterations()
    {
        var options = app.Services.GetRequiredService<IOptions<PasswordHasherOptions>>().Value;
        Assert.True(options.IterationCount >= 210_000);
        var identity = app.Services.GetRequiredService<IOptions<IdentityOptions>>().Value;
        Assert.Equal(5, identity.Lockout.MaxFailedAccessAttempts);
        Assert.True(identity.Lockout.DefaultLockoutTimeSpan >= TimeSpan.FromMinutes(15));
        Assert.True(identity.SignIn.RequireConfirmedAccount);
    }

    [Fact]
    public async Task A_TOTP_code_is_accepted_once_even_when_submitted_ten_times_at_once()
    {
        var user = await app.CreateUserAsync("concurrent@example.com", "password123");
        string key;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>();
            await users.ResetAuthenticatorKeyAsync((await users.FindByIdAsync(user.Id.ToString()))!);
            key = (await users.GetAuthenticatorKeyAsync((await users.FindByIdAsync(user.Id.ToString()))!))!;
        }
        var code = Totp.Code(Totp.FromBase32(key), Totp.StepAt(DateTimeOffset.UtcNow)).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);

        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            await using var scope = app.Services.CreateAsyncScope();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>();
            return await users.VerifyTwoFactorTokenAsync((await users.FindByIdAsync(user.Id.ToString()))!, ReplaySafeAuthenticatorTokenProvider.Name, code);
        }));

        Assert.Equal(1, results.Count(r => r));
    }

    [Theory]
    [InlineData(-1, true)]
    [InlineData(0, true)]
    [InlineData(1, true)]
    [InlineData(-2, false)]
    [InlineData(2, false)]
    public async Task TOTP_accepts_one_step_of_clock_skew_and_no_more(int stepOffset, bool accepted)
    {
        var user = await app.CreateUserAsync($"skew{stepOffset + 10}@example.com", "password123");
        await using var scope = app.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>();
        var loaded = (await users.FindByIdAsync(user.Id.ToString()))!;
        await users.ResetAuthenticatorKeyAsync(loaded);
        var key = Totp.FromBase32((await users.GetAuthenticatorKeyAsync(loaded))!);
        var code = Totp.Code(key, Totp.StepAt(DateTimeOffset.UtcNow) + stepOffset).ToString("D6", System.Globalization.CultureInfo.InvariantCulture);

        Assert.Equal(accepted, await users.VerifyTwoFactorTokenAsync(loaded, ReplaySafeAuthenticatorTokenProvider.Name, code));
    }

    [Fact]
    public void Totp_matches_the_RFC_6238_test_vector()
    {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", T = 59 s → 94287082 (8 digits); 6 digits: 287082.
        var key = "12345678901234567890"u8.ToArray();
        Assert.Equal(287082, Totp.Code(key, 59 / 30));
        Assert.Equal(key, Totp.FromBase32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
    }

    [Fact]
    public async Task The_confirmed_email_policy_needs_a_confirmed_address()
    {
        var authorization = app.Services.GetRequiredService<IAuthorizationService>();
        await using var scope = app.Services.CreateAsyncScope();
        var factory = scope.ServiceProvider.GetRequiredService<IUserClaimsPrincipalFactory<AppUser>>();
        var confirmed = await factory.CreateAsync(await app.CreateUserAsync("policy-yes@example.com", "password123"));
        var unconfirmed = await factory.CreateAsync(await app.CreateUserAsync("policy-no@example.com", "password123", confirmed: false));

        Assert.True((await authorization.AuthorizeAsync(confirmed, AccountPolicies.ConfirmedEmail)).Succeeded);
        Assert.False((await authorization.AuthorizeAsync(unconfirmed, AccountPolicies.ConfirmedEmail)).Succeeded);
    }

    [Fact]
    public async Task Create_user_verb_makes_a_confirmed_admin_and_refuses_bad_input()
    {
        var (code, stdout, _) = await RunAsync("create-user", "--email", "ops@example.com", "--password", "operator-pass", "--admin");
        Assert.Equal(0, code);
        Assert.Contains("created admin ops@example.com", stdout, StringComparison.Ordinal);
        var user = await app.FindUserAsync("ops@example.com");
        Assert.True(user!.EmailConfirmed);
        await using (var scope = app.Services.CreateAsyncScope())
            Assert.True(await scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>().IsInRoleAsync(user, Roles.Admin));

        Assert.Equal(1, (await RunAsync("create-user", "--email", "ops@example.com", "--password", "operator-pass")).Code);   // exists
        Assert.Equal(2, (await RunAsync("create-user", "--email", "not-an-email", "--password", "operator-pass")).Code);
        Assert.Equal(2, (await RunAsync("create-user", "--email", "short@example.com", "--password", "short")).Code);
        Assert.Equal(2, (await RunAsync("create-user", "--email", "x@example.com")).Code);

        using var session = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync("ops@example.com", "operator-pass")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await session.GetAsync("/Admin")).StatusCode);
    }

    private async Task<(int Code, string StdOut, string StdErr)> RunAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(app.Services, args, stdout, stderr, CancellationToken.None);
        return (code, stdout.ToString() + stderr, stderr.ToString());
    }
}

/// <summary>Rate limits with small numbers, on purpose.</summary>
public sealed class RateLimitedApp : AccountsApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Accounts:PerIpPerMinute"] = "100",
        ["Accounts:PerAccountPer15Minutes"] = "3",
    };
}

public sealed class RateLimitTests(RateLimitedApp app) : IClassFixture<RateLimitedApp>
{
    [Fact]
    public async Task Forgot_password_for_one_address_is_limited_with_a_clear_message()
    {
        using var session = app.NewSession();
        for (var i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.Redirect, (await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "target@example.com" })).StatusCode);

        var limited = await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "target@example.com" });
        var other = await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "other@example.com" });

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Contains("Too many attempts", await limited.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, other.StatusCode);
    }

    [Fact]
    public async Task Log_in_attempts_for_one_account_are_limited()
    {
        using var session = app.NewSession();
        for (var i = 0; i < 3; i++) await session.LogInAsync("spray@example.com", "guess" + i);

        var limited = await session.LogInAsync("spray@example.com", "guess-again");

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
    }
}
