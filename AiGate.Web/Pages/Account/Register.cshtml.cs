using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Account;

/// <summary>
/// Sign up. The answer is the same whether or not the address already has an account (ASVS 6.3.8):
/// a new address gets a confirmation link, a known one a "you already have an account" mail, and the
/// page says "check your inbox" either way. The user and its mail are saved in one transaction.
/// </summary>
public sealed class RegisterModel(UserManager<AppUser> users, AppDbContext db, EmailOutbox outbox, AccountRateLimits limits,
    TimeProvider clock, IOptions<EmailOptions> emailOptions) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();

    /// <summary>A local page to come back to after confirming and logging in (an invitation); carried in the confirmation link.</summary>
    public string? ReturnUrl { get; private set; }

    public void OnGet(string? returnUrl) => ReturnUrl = Url.IsLocalUrl(returnUrl) ? returnUrl : null;

    public async Task<IActionResult> OnPostAsync(string? returnUrl, CancellationToken ct)
    {
        ReturnUrl = Url.IsLocalUrl(returnUrl) ? returnUrl : null;
        if (!this.TryAccept(limits, AccountForm.Register, Input.Email, out var email)) return Page();

        var user = new AppUser { Id = Guid.CreateVersion7(), UserName = email, Email = email, CreatedAt = clock.GetUtcNow() };
        // Password rules first, so a weak password gets the same answer for known and unknown addresses.
        foreach (var validator in users.PasswordValidators)
        {
            var check = await validator.ValidateAsync(users, user, Input.Password);
            foreach (var error in check.Errors) ModelState.AddModelError($"{nameof(Input)}.{nameof(Input.Password)}", error.Description);
        }
        if (!ModelState.IsValid) return Page();

        var existing = await users.FindByEmailAsync(email);
        if (existing is not null)
        {
            users.PasswordHasher.HashPassword(user, Input.Password);   // the same work as a sign-up, so timing tells nothing either
            outbox.Enqueue(existing.Email!, EmailTemplates.AlreadyRegistered(Link("/Account/Login"), Link("/Account/ForgotPassword")), existing.Id);
            await db.SaveChangesAsync(ct);
        }
        else
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var created = await users.CreateAsync(user, Input.Password);
            if (!created.Succeeded)
            {
                foreach (var error in created.Errors) ModelState.AddModelError("", error.Description);
                return Page();
            }
            await this.QueueConfirmationLinkAsync(users, outbox, emailOptions.Value, user, ReturnUrl);
            await db.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
        }
        TempData["RegisteredEmail"] = email;
        return RedirectToPage("RegisterConfirmation");
    }

    private string Link(string relative) => AccountLinks.Absolute(Request, emailOptions.Value, relative);

    public sealed class InputModel
    {
        [Required, EmailAddress, StringLength(256)]
        [Display(Name = "E-mail")]
        public string Email { get; set; } = "";

        [Required, StringLength(512, MinimumLength = 8, ErrorMessage = "Use at least 8 characters (long passphrases are welcome).")]
        [DataType(DataType.Password)]
        public string Password { get; set; } = "";

        [Required, DataType(DataType.Password), Compare(nameof(Password), ErrorMessage = "The two passwords do not match.")]
        [Display(Name = "Confirm password")]
        public string ConfirmPassword { get; set; } = "";
    }
}
