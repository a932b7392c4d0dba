using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Account;

/// <summary>Mails a reset link to a confirmed account; the answer is the same for unknown addresses (ASVS 6.3.8).</summary>
public sealed class ForgotPasswordModel(UserManager<AppUser> users, AppDbContext db, EmailOutbox outbox, AccountRateLimits limits,
    IOptions<EmailOptions> emailOptions) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (!ModelState.IsValid) return Page();
        var email = Input.Email.Trim();
        if (!limits.TryAcquire(AccountForm.ForgotPassword, HttpContext, email))
        {
            ModelState.AddModelError("", AccountRateLimits.Message);
            Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Page();
        }
        var user = await users.FindByEmailAsync(email);
        if (user is { EmailConfirmed: true })
        {
            var token = await users.GeneratePasswordResetTokenAsync(user);
            var url = Url.Page("/Account/ResetPassword", null, new { userId = user.Id, code = AccountLinks.EncodeToken(token) })!;
            outbox.Enqueue(user.Email!, EmailTemplates.ResetPassword(AccountLinks.Absolute(Request, emailOptions.Value, url)), user.Id);
            await db.SaveChangesAsync(ct);
        }
        return RedirectToPage("ForgotPasswordConfirmation");
    }

    public sealed class InputModel
    {
        [Required, EmailAddress, StringLength(256), Display(Name = "E-mail")]
        public string Email { get; set; } = "";
    }
}
