using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>
/// Password and sessions. Changing the password or "sign out everywhere" renews the security stamp:
/// every other session ends within a minute (the validation interval); this one is re-issued.
/// </summary>
public sealed class SecurityModel(UserManager<AppUser> users, SignInManager<AppUser> signIn) : PageModel
{
    [BindProperty] public PasswordInput Input { get; set; } = new();
    [TempData] public string? StatusMessage { get; set; }
    public bool TwoFactorEnabled { get; private set; }

    public async Task OnGetAsync() => TwoFactorEnabled = (await users.GetUserAsync(User))?.TwoFactorEnabled ?? false;

    public async Task<IActionResult> OnPostChangePasswordAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        TwoFactorEnabled = user.TwoFactorEnabled;
        if (!ModelState.IsValid) return Page();
        var result = await users.ChangePasswordAsync(user, Input.CurrentPassword, Input.NewPassword);
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
                ModelState.AddModelError("", error.Code == "PasswordMismatch" ? "That is not your current password." : error.Description);
            return Page();
        }
        await signIn.RefreshSignInAsync(user);
        StatusMessage = "Your password was changed. Other devices have to log in again.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostSignOutEverywhereAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        await users.UpdateSecurityStampAsync(user);
        await signIn.RefreshSignInAsync(user);
        StatusMessage = "Every other session was signed out (within a minute). This one stays signed in.";
        return RedirectToPage();
    }

    public sealed class PasswordInput
    {
        [Required, DataType(DataType.Password), Display(Name = "Current password")]
        public string CurrentPassword { get; set; } = "";

        [Required, StringLength(512, MinimumLength = 8, ErrorMessage = "Use at least 8 characters (long passphrases are welcome).")]
        [DataType(DataType.Password), Display(Name = "New password")]
        public string NewPassword { get; set; } = "";

        [Required, DataType(DataType.Password), Compare(nameof(NewPassword), ErrorMessage = "The two passwords do not match.")]
        [Display(Name = "Confirm new password")]
        public string ConfirmPassword { get; set; } = "";
    }
}
