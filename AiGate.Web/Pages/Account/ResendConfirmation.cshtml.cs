using System.ComponentModel.DataAnnotations;
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
    [BindProperty] public InputModel Input { get; set; } = new();
    [TempData] public string? StatusMessage { get; set; }

    public void OnGet(string? email) => Input.Email = email ?? "";

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (!ModelState.IsValid) return Page();
        var email = Input.Email.Trim();
        if (!limits.TryAcquire(AccountForm.ResendConfirmation, HttpContext, email))
        {
            ModelState.AddModelError("", AccountRateLimits.Message);
            Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Page();
        }
        var user = await users.FindByEmailAsync(email);
        if (user is { EmailConfirmed: false })
        {
            var token = await users.GenerateEmailConfirmationTokenAsync(user);
            var url = Url.Page("/Account/ConfirmEmail", null, new { userId = user.Id, code = AccountLinks.EncodeToken(token) })!;
            outbox.Enqueue(user.Email!, EmailTemplates.ConfirmEmail(AccountLinks.Absolute(Request, emailOptions.Value, url)), user.Id);
            await db.SaveChangesAsync(ct);
        }
        StatusMessage = "If that address has an account waiting for confirmation, a new link is on its way. Check your inbox.";
        return RedirectToPage();
    }

    public sealed class InputModel
    {
        [Required, EmailAddress, StringLength(256), Display(Name = "E-mail")]
        public string Email { get; set; } = "";
    }
}
