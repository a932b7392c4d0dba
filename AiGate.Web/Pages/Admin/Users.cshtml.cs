using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Credits;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>Users, newest first, searchable by e-mail and paged; each row links to the user page (/Admin/Users/{id}).</summary>
public sealed class UsersModel(AppDbContext db, TimeProvider clock) : PageModel
{
    public const int PageSize = 50;
    public string? Query { get; private set; }
    public int PageNumber { get; private set; } = 1;
    public int Total { get; private set; }
    public int Pages => Math.Max(1, (Total + PageSize - 1) / PageSize);
    public IReadOnlyList<UserRow> Users { get; private set; } = [];

    public async Task OnGetAsync(string? q, int p, CancellationToken ct)
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
        Total = await users.CountAsync(ct);
        PageNumber = Math.Clamp(p, 1, Pages);
        var adminRoleId = db.Roles.Where(r => r.Name == Roles.Admin).Select(r => r.Id);
        Users = await users.OrderByDescending(u => u.CreatedAt).ThenBy(u => u.Id).Skip((PageNumber - 1) * PageSize).Take(PageSize)
            .Select(u => new UserRow(u.Id, u.Email!, u.EmailConfirmed, u.TwoFactorEnabled, u.LockoutEnd != null && u.LockoutEnd > now,
                db.UserRoles.Any(r => r.UserId == u.Id && adminRoleId.Contains(r.RoleId)), u.SuspendedAt != null,
                db.Set<CreditAccount>().Where(c => c.UserId == u.Id).Select(c => (long?)c.BalanceMicros).FirstOrDefault() ?? 0, u.CreatedAt))
            .ToListAsync(ct);
    }

    public sealed record UserRow(Guid Id, string Email, bool EmailConfirmed, bool TwoFactorEnabled, bool LockedOut, bool IsAdmin, bool Suspended,
        long BalanceMicros, DateTimeOffset CreatedAt);
}
