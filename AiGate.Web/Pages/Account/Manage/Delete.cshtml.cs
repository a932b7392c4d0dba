using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>
/// Deleting an account (docs/accounts.md): the user row goes, and with it (foreign keys, on delete cascade)
/// roles, tokens, its outbox mail and memberships; the organizations they own alone go too, with their keys and
/// settings (ledger and usage rows are kept for accounting). A remaining balance is forfeited. Someone who owns an
/// organization with other members must hand it over first: deleting it would take the team's balance with it.
/// </summary>
public sealed class DeleteModel(UserManager<AppUser> users, SignInManager<AppUser> signIn, AppDbContext db) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        if (!ModelState.IsValid) return Page();
        if (!await users.CheckPasswordAsync(user, Input.Password))
        {
            ModelState.AddModelError($"{nameof(Input)}.{nameof(Input.Password)}", "That is not your password.");
            return Page();
        }
        await using var transaction = await db.Database.BeginTransactionAsync();
        var owned = await db.Set<OrgMember>().Where(m => m.UserId == user.Id && m.Role == OrgRole.Owner).Select(m => m.OrgId).ToArrayAsync();
        // Locked before the check: someone joining now (their membership's foreign key needs the row) waits for this
        // transaction, or has committed and is counted; never deleted with an organization checked as theirs alone.
        await db.Database.ExecuteSqlInterpolatedAsync($"select 1 from organizations where id = any({owned}) for update");
        var shared = await db.Set<Organization>().Where(o => owned.Contains(o.Id) && db.Set<OrgMember>().Count(m => m.OrgId == o.Id) > 1)
            .Select(o => o.Name).ToListAsync();
        if (shared.Count > 0)
        {
            await transaction.RollbackAsync();
            ModelState.AddModelError("", $"You own {string.Join(", ", shared)}, which has other members: hand it over to one of them (Team page) or remove them first.");
            return Page();
        }
        await db.Set<Organization>().Where(o => owned.Contains(o.Id)).ExecuteDeleteAsync();
        var result = await users.DeleteAsync(user);
        if (!result.Succeeded) throw new InvalidOperationException("Could not delete the account.");
        // Every instance drops the keys they created (in teams they leave behind too) and those of what they owned at once,
        // instead of letting a cached key spend a team's balance until the entry expires.
        await CacheNotifications.PublishAsync((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)transaction.GetDbTransaction(),
            $"owner:{user.Id}", CancellationToken.None);
        await transaction.CommitAsync();
        await signIn.SignOutAsync();
        return RedirectToPage("/Account/Deleted");
    }

    public sealed class InputModel
    {
        [Required, DataType(DataType.Password), Display(Name = "Your password")]
        public string Password { get; set; } = "";

        [Range(typeof(bool), "true", "true", ErrorMessage = "Tick the box to confirm.")]
        [Display(Name = "I understand that this cannot be undone and that my remaining balance is forfeited")]
        public bool Understood { get; set; }
    }
}
