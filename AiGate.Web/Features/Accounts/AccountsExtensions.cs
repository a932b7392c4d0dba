using AiGate.Web.Data;
using AiGate.Web.Infrastructure.Cli;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Features.Accounts;

public static class AccountsExtensions
{
    /// <summary>
    /// ASP.NET Core Identity on our EF stores, hardened per RELIABILITY §4: PBKDF2 with 210,000
    /// iterations, lockout after 5 failures for 15 minutes, single-use TOTP (±1 step), confirmed e-mail
    /// before sign-in, security stamps re-checked every minute, <c>__Host-</c> cookies outside Development.
    /// </summary>
    public static IHostApplicationBuilder AddAccounts(this IHostApplicationBuilder builder)
    {
        var development = builder.Environment.IsDevelopment();
        builder.Services.AddOptions<AccountsOptions>().BindConfiguration(AccountsOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        builder.Services.AddIdentity<AppUser, IdentityRole<Guid>>(o =>
            {
                o.User.RequireUniqueEmail = true;
                o.User.AllowedUserNameCharacters = "";   // the user name is the e-mail address, validated as one
                o.SignIn.RequireConfirmedAccount = true;
                o.SignIn.RequireConfirmedEmail = true;
                // ASVS 6.2: at least 8 characters, no composition rules, long passphrases welcome.
                o.Password.RequiredLength = 8;
                o.Password.RequireDigit = false;
                o.Password.RequireLowercase = false;
                o.Password.RequireUppercase = false;
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequiredUniqueChars = 1;
                o.Lockout.MaxFailedAccessAttempts = 5;
                o.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(15);
                o.Lockout.AllowedForNewUsers = true;
                o.Tokens.AuthenticatorTokenProvider = ReplaySafeAuthenticatorTokenProvider.Name;
            })
            .AddEntityFrameworkStores<AppDbContext>()
            .AddDefaultTokenProviders()
            .AddTokenProvider<ReplaySafeAuthenticatorTokenProvider>(ReplaySafeAuthenticatorTokenProvider.Name)
            .AddClaimsPrincipalFactory<AppClaimsPrincipalFactory>();

        // OWASP: PBKDF2-HMAC-SHA512 with at least 210,000 iterations (Identity's default is 100,000);
        // older hashes are upgraded at the next successful log-in (SuccessRehashNeeded).
        builder.Services.Configure<PasswordHasherOptions>(o => o.IterationCount = 210_000);
        var stampSeconds = builder.Configuration.GetValue($"{AccountsOptions.Section}:{nameof(AccountsOptions.SecurityStampValidationSeconds)}", 60);
        builder.Services.Configure<SecurityStampValidatorOptions>(o => o.ValidationInterval = TimeSpan.FromSeconds(Math.Clamp(stampSeconds, 0, 60)));

        // Cookies: HttpOnly, SameSite=Lax, and outside Development Secure with the __Host- prefix
        // (no Domain, Path=/, so no subdomain can set or read them).
        var prefix = development ? "" : "__Host-";
        var secure = development ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;
        builder.Services.ConfigureApplicationCookie(o =>
        {
            o.Cookie.Name = prefix + "aigate";
            o.LoginPath = "/Account/Login";
            o.LogoutPath = "/Account/Logout";
            o.AccessDeniedPath = "/Account/AccessDenied";
            o.ExpireTimeSpan = TimeSpan.FromDays(14);
            o.SlidingExpiration = true;
        });
        builder.Services.Configure<CookieAuthenticationOptions>(IdentityConstants.TwoFactorUserIdScheme, o => o.Cookie.Name = prefix + "aigate.2fa");
        builder.Services.Configure<CookieAuthenticationOptions>(IdentityConstants.TwoFactorRememberMeScheme, o => o.Cookie.Name = prefix + "aigate.2fa-device");
        builder.Services.Configure<CookieAuthenticationOptions>(IdentityConstants.ExternalScheme, o => o.Cookie.Name = prefix + "aigate.external");
        builder.Services.PostConfigureAll<CookieAuthenticationOptions>(o =>
        {
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = secure;
            o.Cookie.Path = "/";
        });
        builder.Services.Configure<AntiforgeryOptions>(o =>
        {
            o.Cookie.Name = prefix + "aigate.af";
            o.Cookie.SecurePolicy = secure;
            o.Cookie.SameSite = SameSiteMode.Lax;
        });

        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AccountPolicies.Admin, p => p.RequireAuthenticatedUser().RequireRole(Roles.Admin))
            .AddPolicy(AccountPolicies.ConfirmedEmail, p => p.RequireAuthenticatedUser().RequireClaim(AccountPolicies.EmailConfirmedClaim, "true"));
        // PostConfigure: AddRazorPages' own setup replaces the convention collection when it runs.
        builder.Services.PostConfigure<RazorPagesOptions>(o =>
        {
            o.Conventions.AuthorizeFolder("/Account/Manage");
            o.Conventions.AuthorizeFolder("/Admin", AccountPolicies.Admin);
            // The mailbox decides itself: open in Development (links in local mail must be clickable), admins elsewhere.
            o.Conventions.AllowAnonymousToPage("/Admin/Mailbox");
        });

        builder.Services.AddSingleton<AccountRateLimits>();
        builder.Services.AddCliVerb(CreateUserVerb.Verb);
        if (development) builder.Services.AddHostedService<AdminRoleSeeder>();
        return builder;
    }
}
