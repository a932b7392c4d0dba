using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account;

/// <summary>
/// Log in. Failures count towards lockout (5 → 15 minutes), also for an unconfirmed account. Every failure gets the
/// same answer and the same password-hash work: an unknown address, a wrong password and an unconfirmed account
/// (right password or not) cannot be told apart, by the page or by its timing (docs/accounts.md).
/// </summary>
public sealed class LoginModel(SignInManager<AppUser> signIn, UserManager<AppUser> users, AccountRateLimits limits) : PageModel
{
    /// <summary>A hash of a random password, made once with the app's hasher settings, that an unknown address is checked against.</summary>
    private static string? s_unknownAccountHash;

    [BindProperty] public InputModel Input { get; set; } = new();
    public string? ReturnUrl { get; private set; }
    public bool Failed { get; private set; }

    public void OnGet(string? returnUrl) => ReturnUrl = returnUrl;

    public async Task<IActionResult> OnPostAsync(string? returnUrl)
    {
        ReturnUrl = returnUrl;
        if (!this.TryAccept(limits, AccountForm.Login, Input.Email, out var email)) return Page();

        var user = await users.FindByNameAsync(email);
        if (user is null)
        {
            // Identity answers an unknown name at once; checking a hash as for a real account makes it take as long.
            var hasher = users.PasswordHasher;
            s_unknownAccountHash ??= hasher.HashPassword(new AppUser(), Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)));
            hasher.VerifyHashedPassword(new AppUser(), s_unknownAccountHash, Input.Password);
            return Failure();
        }
        if (!await users.IsEmailConfirmedAsync(user)) return await UnconfirmedAsync(user);

        var result = await signIn.PasswordSignInAsync(user, Input.Password, Input.RememberMe, lockoutOnFailure: true);
        if (result.Succeeded) return LocalRedirect(this.AfterLoginUrl(ReturnUrl));
        if (result.RequiresTwoFactor) return RedirectToPage("LoginWith2fa", new { returnUrl = ReturnUrl, rememberMe = Input.RememberMe });
        if (result.IsLockedOut) return RedirectToPage("Lockout");
        return Failure();
    }

    /// <summary>
    /// Identity refuses an unconfirmed account before it looks at the password, so a wrong one would neither count
    /// towards lockout nor cost the hash work, and telling the owner "confirm first" after the right one made the page
    /// an oracle for guessing it without limit. Here the password is checked, a wrong one counts, a right one changes
    /// nothing (resetting the count would show in when the lockout comes), and the answer is the plain failure.
    /// </summary>
    private async Task<IActionResult> UnconfirmedAsync(AppUser user)
    {
        if (await users.IsLockedOutAsync(user)) return RedirectToPage("Lockout");
        if (!await users.CheckPasswordAsync(user, Input.Password))
        {
            await users.AccessFailedAsync(user);
            if (await users.IsLockedOutAsync(user)) return RedirectToPage("Lockout");
        }
        return Failure();
    }

    private PageResult Failure()
    {
        Failed = true;
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
