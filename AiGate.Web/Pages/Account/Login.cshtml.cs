using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account;

/// <summary>Log in. Failures count towards lockout (5 → 15 minutes); an unconfirmed account is told so only after the right password.</summary>
public sealed class LoginModel(SignInManager<AppUser> signIn, UserManager<AppUser> users, AccountRateLimits limits) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();
    public string? ReturnUrl { get; private set; }
    public bool NeedsConfirmation { get; private set; }

    public void OnGet(string? returnUrl) => ReturnUrl = returnUrl;

    public async Task<IActionResult> OnPostAsync(string? returnUrl)
    {
        ReturnUrl = returnUrl;
        if (!this.TryAccept(limits, AccountForm.Login, Input.Email, out var email)) return Page();

        var result = await signIn.PasswordSignInAsync(email, Input.Password, Input.RememberMe, lockoutOnFailure: true);
        if (result.Succeeded) return LocalRedirect(this.AfterLoginUrl(ReturnUrl));
        if (result.RequiresTwoFactor) return RedirectToPage("LoginWith2fa", new { returnUrl = ReturnUrl, rememberMe = Input.RememberMe });
        if (result.IsLockedOut) return RedirectToPage("Lockout");
        if (result.IsNotAllowed && await users.FindByEmailAsync(email) is { } user && await users.CheckPasswordAsync(user, Input.Password))
        {
            // Identity says "not allowed" before it looks at the password; only the owner learns the account waits for confirmation.
            NeedsConfirmation = true;
            ModelState.AddModelError("", "Confirm your e-mail address first: open the link we sent you.");
            return Page();
        }
        ModelState.AddModelError("", "Wrong e-mail or password.");
        return Page();
    }

    public sealed class InputModel
    {
        [Required, EmailAddress, Display(Name = "E-mail")]
        public string Email { get; set; } = "";

        [Required, DataType(DataType.Password), StringLength(512)]
        public string Password { get; set; } = "";

        [Display(Name = "Remember me on this device")]
        public bool RememberMe { get; set; }
    }
}
