using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>Account settings: the profile.</summary>
public sealed class IndexModel(AppDbContext db) : PageModel
{
    public ProfileRow? Profile { get; private set; }
    [Microsoft.AspNetCore.Mvc.TempData] public string? StatusMessage { get; set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var userId = User.GetUserId();
        Profile = await db.Users.AsNoTracking().Where(u => u.Id == userId)
            .Select(u => new ProfileRow(u.Email!, u.EmailConfirmed, u.TwoFactorEnabled, u.CreatedAt)).FirstOrDefaultAsync(ct);
    }

    public sealed record ProfileRow(string Email, bool EmailConfirmed, bool TwoFactorEnabled, DateTimeOffset CreatedAt);
}
