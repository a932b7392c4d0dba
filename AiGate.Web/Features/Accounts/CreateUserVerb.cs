using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Infrastructure.Cli;
using Microsoft.AspNetCore.Identity;

namespace AiGate.Web.Features.Accounts;

public static class CreateUserVerb
{
    /// <summary><c>create-user --email E --password P [--admin]</c>: a ready-to-use account (e-mail confirmed), for operators and scripts; audited (actor cli).</summary>
    public static readonly CliVerb Verb = new("create-user", "create a user with a confirmed e-mail (optionally an admin)",
        [new CliOption("email", "the user's e-mail address", Required: true),
         new CliOption("password", "the user's password (at least 8 characters)", Required: true),
         new CliOption("admin", "give the user the admin role", IsFlag: true)],
        static async context =>
        {
            var email = context.Get("email").Trim();
            if (!new System.ComponentModel.DataAnnotations.EmailAddressAttribute().IsValid(email))
                throw new CliUsageException($"'{email}' is not an e-mail address");
            var users = context.Services.GetRequiredService<UserManager<AppUser>>();
            if (await users.FindByEmailAsync(email) is not null)
            {
                await context.Out.WriteLineAsync($"error: a user with the e-mail {email} already exists");
                return 1;
            }

            var user = new AppUser
            {
                Id = Guid.CreateVersion7(),
                UserName = email,
                Email = email,
                EmailConfirmed = true,
                CreatedAt = context.Services.GetRequiredService<TimeProvider>().GetUtcNow(),
            };
            // The account, its role and the audit row (actor cli) commit together: UserManager saves through the same context.
            var db = context.Services.GetRequiredService<AppDbContext>();
            await using var transaction = await db.Database.BeginTransactionAsync(context.CancellationToken);
            var created = await users.CreateAsync(user, context.Get("password"));
            if (!created.Succeeded)
                throw new CliUsageException(string.Join(" ", created.Errors.Select(e => e.Description)));
            if (context.Flag("admin"))
            {
                await Roles.EnsureAdminRoleAsync(context.Services.GetRequiredService<RoleManager<IdentityRole<Guid>>>());
                var added = await users.AddToRoleAsync(user, Roles.Admin);
                if (!added.Succeeded) throw new InvalidOperationException(string.Join(" ", added.Errors.Select(e => e.Description)));
            }
            context.Services.GetRequiredService<AuditLog>().Add(new AuditChange("user.create", $"user:{user.Id}",
                After: new { user.Email, EmailConfirmed = true, Admin = context.Flag("admin") }));
            await db.SaveChangesAsync(context.CancellationToken);
            await transaction.CommitAsync(context.CancellationToken);
            await context.Out.WriteLineAsync($"created {(context.Flag("admin") ? "admin" : "user")} {email} ({user.Id})");
            return 0;
        });
}
