using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Credits;
using AiGate.Web.Infrastructure.Cli;
using Microsoft.AspNetCore.Identity;

namespace AiGate.Web.Features.Demo;

/// <summary>
/// Demo data for local runs: an admin and a user with a little credit, both with well-known
/// passwords. Idempotent (existing accounts are left alone; the grant has an idempotency key).
/// Development runs it at start; the <c>seed-demo</c> verb runs it anywhere but Production.
/// </summary>
public static partial class DemoSeeder
{
    public const string AdminEmail = "admin@aigate.local";
    public const string AdminPassword = "aigate-admin-demo";
    public const string UserEmail = "demo@aigate.local";
    public const string UserPassword = "aigate-demo-user";
    private const long DemoCreditMicros = 5_000_000;

    public static async Task SeedAsync(IServiceProvider services, CancellationToken ct)
    {
        await using var scope = services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>();
        var roles = scope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole<Guid>>>();
        var clock = scope.ServiceProvider.GetRequiredService<TimeProvider>();
        await Roles.EnsureAdminRoleAsync(roles);

        var admin = await EnsureUserAsync(users, AdminEmail, AdminPassword, clock);
        if (!await users.IsInRoleAsync(admin, Roles.Admin)) await users.AddToRoleAsync(admin, Roles.Admin);
        var demo = await EnsureUserAsync(users, UserEmail, UserPassword, clock);
        await scope.ServiceProvider.GetRequiredService<Ledger>()
            .PostAsync(demo.Id, LedgerKinds.Grant, DemoCreditMicros, "demo credit", "demo-grant:" + demo.Id, ct);
    }

    private static async Task<AppUser> EnsureUserAsync(UserManager<AppUser> users, string email, string password, TimeProvider clock)
    {
        if (await users.FindByEmailAsync(email) is { } existing) return existing;
        var user = new AppUser { Id = Guid.CreateVersion7(), UserName = email, Email = email, EmailConfirmed = true, CreatedAt = clock.GetUtcNow() };
        var created = await users.CreateAsync(user, password);
        if (!created.Succeeded) throw new InvalidOperationException(string.Join(" ", created.Errors.Select(e => e.Description)));
        return user;
    }

    public static readonly CliVerb Verb = new("seed-demo", "create the demo admin and user (not in Production)", [], static async context =>
    {
        if (context.Services.GetRequiredService<IHostEnvironment>().IsProduction())
            throw new InvalidOperationException("demo accounts have well-known passwords and are refused in Production");
        await SeedAsync(context.Services, context.CancellationToken);
        // Accounts with well-known passwords (one an admin) and credit: audited like any verb that changes access or money.
        context.Services.GetRequiredService<AuditLog>().Add(new AuditChange("demo.seed", "demo:accounts",
            After: new { Admin = AdminEmail, User = UserEmail, CreditMicros = DemoCreditMicros }));
        await context.Services.GetRequiredService<AppDbContext>().SaveChangesAsync(context.CancellationToken);
        await context.Out.WriteLineAsync($"demo admin {AdminEmail} / {AdminPassword}; demo user {UserEmail} / {UserPassword} ($5 of credit)");
        return 0;
    });

    public static IHostApplicationBuilder AddDemo(this IHostApplicationBuilder builder)
    {
        builder.Services.AddCliVerb(Verb);
        return builder;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Demo accounts: admin {AdminEmail} / {AdminPassword}, user {UserEmail} / {UserPassword}")]
    public static partial void LogDemoAccounts(ILogger logger, string adminEmail, string adminPassword, string userEmail, string userPassword);
}
