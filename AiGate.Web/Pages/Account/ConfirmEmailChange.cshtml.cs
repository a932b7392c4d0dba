using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account;

/// <summary>The link mailed to a new address: makes the change, and tells the old address about it in the same transaction.</summary>
public sealed class ConfirmEmailChangeModel(UserManager<AppUser> users, SignInManager<AppUser> signIn, AppDbContext db, EmailOutbox outbox) : PageModel
{
    public bool Changed { get; private set; }
    public string? NewEmail { get; private set; }

    public async Task OnGetAsync(Guid? userId, string? email, string? code, CancellationToken ct)
    {
        var token = AccountLinks.DecodeToken(code);
        if (userId is null || string.IsNullOrWhiteSpace(email) || token is null) return;
        var user = await users.FindByIdAsync(userId.Value.ToString());
        if (user is null) return;
        var oldEmail = user.Email!;

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var changed = await users.ChangeEmailAsync(user, email, token);
        if (!changed.Succeeded) return;
        if (!(await users.SetUserNameAsync(user, email)).Succeeded) return;   // rolled back with the transaction
        outbox.Enqueue(oldEmail, EmailTemplates.EmailChanged(email), user.Id);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);

        (Changed, NewEmail) = (true, email);
        if (User.Identity?.IsAuthenticated == true && User.GetUserId() == user.Id) await signIn.RefreshSignInAsync(user);
    }
}
