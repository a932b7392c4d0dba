using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Account;

/// <summary>
/// Mails a reset link to any account, confirmed or not; the answer is the same for unknown addresses (ASVS 6.3.8).
/// An unconfirmed one too: someone may have signed up with another person's address, and the owner takes the account
/// back by resetting its password, which also confirms the address (the link proved the mailbox).
/// </summary>
public sealed class ForgotPasswordModel(UserManager<AppUser> users, AppDbContext db, EmailOutbox outbox, AccountRateLimits limits,
    IOptions<EmailOptions> emailOptions) : PageModel
{
    [BindProperty] public EmailInputModel Input { get; set; } = new();

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (!this.TryAccept(limits, AccountForm.ForgotPassword, Input.Email, out var email)) return Page();
        var user = await users.FindByEmailAsync(email);
        if (user is not null)
        {
            var token = await users.GeneratePasswordResetTokenAsync(user);
            outbox.Enqueue(user.Email!, EmailTemplates.ResetPassword(this.TokenLink(emailOptions.Value, "/Account/ResetPassword", user.Id, token)), user.Id);
            await db.SaveChangesAsync(ct);
        }
        return RedirectToPage("ForgotPasswordConfirmation");
    }
}
