using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account;

/// <summary>The second step: a code from the authenticator app. Wrong codes count towards lockout; each code works once.</summary>
public sealed class LoginWith2faModel(SignInManager<AppUser> signIn) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();
    public string? ReturnUrl { get; private set; }
    public bool RememberMe { get; private set; }

    public async Task<IActionResult> OnGetAsync(bool rememberMe, string? returnUrl)
    {
        if (await signIn.GetTwoFactorAuthenticationUserAsync() is null) return RedirectToPage("Login");
        (ReturnUrl, RememberMe) = (returnUrl, rememberMe);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(bool rememberMe, string? returnUrl)
    {
        (ReturnUrl, RememberMe) = (returnUrl, rememberMe);
        if (!ModelState.IsValid) return Page();
        if (await signIn.GetTwoFactorAuthenticationUserAsync() is null) return RedirectToPage("Login");
        var code = Input.TwoFactorCode.Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
        var result = await signIn.TwoFactorAuthenticatorSignInAsync(code, rememberMe, Input.RememberMachine);
        if (result.Succeeded) return LocalRedirect(this.AfterLoginUrl(returnUrl));
        if (result.IsLockedOut) return RedirectToPage("Lockout");
        ModelState.AddModelError("", "That code is not valid. Codes change every 30 seconds and work once.");
        return Page();
    }

    public sealed class InputModel
    {
        [Required, StringLength(7, MinimumLength = 6), Display(Name = "Authentication code")]
        public string TwoFactorCode { get; set; } = "";

        [Display(Name = "Don't ask again on this device")]
        public bool RememberMachine { get; set; }
    }
}
