using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>Change the e-mail address: needs the password (ASVS 7.5.1), and takes effect when the new address confirms.</summary>
public sealed class EmailModel(UserManager<AppUser> users, AppDbContext db, EmailOutbox outbox, IOptions<EmailOptions> emailOptions) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();
    [TempData] public string? StatusMessage { get; set; }
    public string CurrentEmail { get; private set; } = "";

    public async Task OnGetAsync() => CurrentEmail = (await users.GetUserAsync(User))?.Email ?? "";

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        CurrentEmail = user.Email!;
        if (!ModelState.IsValid) return Page();
        if (!await users.CheckPasswordAsync(user, Input.CurrentPassword))
        {
            ModelState.AddModelError($"{nameof(Input)}.{nameof(Input.CurrentPassword)}", "That is not your current password.");
            return Page();
        }
        var newEmail = Input.NewEmail.Trim();
        if (string.Equals(newEmail, user.Email, StringComparison.OrdinalIgnoreCase))
        {
            ModelState.AddModelError($"{nameof(Input)}.{nameof(Input.NewEmail)}", "That is already your address.");
            return Page();
        }
        if (await users.FindByEmailAsync(newEmail) is null)
        {
            var token = await users.GenerateChangeEmailTokenAsync(user, newEmail);
            var link = this.TokenLink(emailOptions.Value, "/Account/ConfirmEmailChange", user.Id, token, new { email = newEmail });
            outbox.Enqueue(newEmail, EmailTemplates.ConfirmEmailChange(newEmail, link), user.Id);
            await db.SaveChangesAsync(ct);
        }
        // The same words when the address belongs to another account: this form must not tell which addresses exist.
        StatusMessage = $"We sent a confirmation link to {newEmail}. Your address changes when you open it.";
        return RedirectToPage();
    }

    public sealed class InputModel
    {
        [Required, EmailAddress, StringLength(256), Display(Name = "New e-mail")]
        public string NewEmail { get; set; } = "";

        [Required, DataType(DataType.Password), Display(Name = "Current password")]
        public string CurrentPassword { get; set; } = "";
    }
}
