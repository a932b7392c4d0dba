using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account;

/// <summary>The second step with one of the recovery codes instead of the app; each code works once.</summary>
public sealed class LoginWithRecoveryCodeModel(SignInManager<AppUser> signIn) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();
    public string? ReturnUrl { get; private set; }

    public async Task<IActionResult> OnGetAsync(string? returnUrl)
    {
        if (await signIn.GetTwoFactorAuthenticationUserAsync() is null) return RedirectToPage("Login");
        ReturnUrl = returnUrl;
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(string? returnUrl)
    {
        ReturnUrl = returnUrl;
        if (!ModelState.IsValid) return Page();
        if (await signIn.GetTwoFactorAuthenticationUserAsync() is null) return RedirectToPage("Login");
        var result = await signIn.TwoFactorRecoveryCodeSignInAsync(Input.RecoveryCode.Replace(" ", "", StringComparison.Ordinal));
        if (result.Succeeded) return LocalRedirect(this.AfterLoginUrl(returnUrl));
        if (result.IsLockedOut) return RedirectToPage("Lockout");
        ModelState.AddModelError("", "That recovery code is not valid, or it was used already.");
        return Page();
    }

    public sealed class InputModel
    {
        [Required, StringLength(32), Display(Name = "Recovery code")]
        public string RecoveryCode { get; set; } = "";
    }
}
