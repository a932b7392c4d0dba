using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>Users, newest first, with a search on the e-mail address.</summary>
public sealed class UsersModel(AppDbContext db, TimeProvider clock) : PageModel
{
    private const int PageSize = 100;
    public string? Query { get; private set; }
    public IReadOnlyList<UserRow> Users { get; private set; } = [];

    public async Task OnGetAsync(string? q, CancellationToken ct)
    {
        Query = q?.Trim();
        var now = clock.GetUtcNow();
        var users = db.Users.AsNoTracking();
        if (!string.IsNullOrEmpty(Query))
        {
            var pattern = "%" + Query.ToUpperInvariant().Replace("\\", "\\\\", StringComparison.Ordinal)
                .Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";
            users = users.Where(u => EF.Functions.Like(u.NormalizedEmail!, pattern));
        }
        var adminRoleId = db.Roles.Where(r => r.Name == Roles.Admin).Select(r => r.Id);
        Users = await users.OrderByDescending(u => u.CreatedAt).Take(PageSize)
            .Select(u => new UserRow(u.Id, u.Email!, u.EmailConfirmed, u.TwoFactorEnabled, u.LockoutEnd != null && u.LockoutEnd > now,
                db.UserRoles.Any(r => r.UserId == u.Id && adminRoleId.Contains(r.RoleId)), u.CreatedAt))
            .ToListAsync(ct);
    }

    public sealed record UserRow(Guid Id, string Email, bool EmailConfirmed, bool TwoFactorEnabled, bool LockedOut, bool IsAdmin, DateTimeOffset CreatedAt);
}
