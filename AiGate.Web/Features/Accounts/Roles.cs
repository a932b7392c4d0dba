using AiGate.Web.Data;
using Microsoft.AspNetCore.Identity;

namespace AiGate.Web.Features.Accounts;

/// <summary>Role and policy names. Ordinary users have no role; admins have <see cref="Admin"/>.</summary>
public static class Roles
{
    public const string Admin = "admin";

    /// <summary>Creates the admin role if it is missing. Idempotent; a concurrent creator losing the race is fine.</summary>
    public static async Task EnsureAdminRoleAsync(RoleManager<IdentityRole<Guid>> roles)
    {
        if (await roles.RoleExistsAsync(Admin)) return;
        var result = await roles.CreateAsync(new IdentityRole<Guid>(Admin) { Id = Guid.CreateVersion7() });
        if (!result.Succeeded && !await roles.RoleExistsAsync(Admin))
            throw new InvalidOperationException("Could not create the admin role: " + string.Join("; ", result.Errors.Select(e => e.Description)));
    }
}

public static class AccountPolicies
{
    /// <summary>The admin area.</summary>
    public const string Admin = "Admin";

    /// <summary>
    /// A signed-in user whose e-mail address is confirmed. Creating API keys and buying credits require
    /// it (RELIABILITY I8, K12); the claim is refreshed with the security stamp, so within a minute.
    /// </summary>
    public const string ConfirmedEmail = "ConfirmedEmail";

    public const string EmailConfirmedClaim = "email_verified";
}

/// <summary>In Development, makes sure the admin role exists at start (after the migrations ran).</summary>
internal sealed class AdminRoleSeeder(IServiceScopeFactory scopes) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        await Roles.EnsureAdminRoleAsync(scope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole<Guid>>>());
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Adds the <see cref="AccountPolicies.EmailConfirmedClaim"/> claim to the sign-in cookie's principal.</summary>
internal sealed class AppClaimsPrincipalFactory(
    UserManager<AppUser> users, RoleManager<IdentityRole<Guid>> roles, Microsoft.Extensions.Options.IOptions<IdentityOptions> options)
    : UserClaimsPrincipalFactory<AppUser, IdentityRole<Guid>>(users, roles, options)
{
    protected override async Task<System.Security.Claims.ClaimsIdentity> GenerateClaimsAsync(AppUser user)
    {
        var identity = await base.GenerateClaimsAsync(user);
        if (user.EmailConfirmed) identity.AddClaim(new(AccountPolicies.EmailConfirmedClaim, "true"));
        return identity;
    }
}
