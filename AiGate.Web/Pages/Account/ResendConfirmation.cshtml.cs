using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Account;

/// <summary>Sends the confirmation link again. The answer never says whether the address has an account.</summary>
public sealed class ResendConfirmationModel(UserManager<AppUser> users, AppDbContext db, EmailOutbox outbox, AccountRateLimits limits,
    IOptions<EmailOptions> emailOptions) : PageModel
{
    [BindProperty] public EmailInputModel Input { get; set; } = new();
    [TempData] public string? StatusMessage { get; set; }

    public void OnGet(string? email) => Input.Email = email ?? "";

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (!this.TryAccept(limits, AccountForm.ResendConfirmation, Input.Email, out var email)) return Page();
        var user = await users.FindByEmailAsync(email);
        if (user is { EmailConfirmed: false })
        {
            await this.QueueConfirmationLinkAsync(users, outbox, emailOptions.Value, user);
            await db.SaveChangesAsync(ct);
        }
        StatusMessage = "If that address has an account waiting for confirmation, a new link is on its way. Check your inbox.";
        return RedirectToPage();
    }
}
