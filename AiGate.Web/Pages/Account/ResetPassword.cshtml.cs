using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account;

/// <summary>
/// The link from the reset mail. A reset also ends a lockout and confirms an unconfirmed address (the mail proved
/// ownership), and through the new security stamp ends every session and outstanding link: an account someone else
/// signed up with this address is the owner's from here on, with only the owner's password.
/// </summary>
public sealed class ResetPasswordModel(UserManager<AppUser> users) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();

    public IActionResult OnGet(Guid? userId, string? code)
    {
        if (userId is null || string.IsNullOrEmpty(code)) return RedirectToPage("ForgotPassword");
        Input = new InputModel { UserId = userId.Value, Code = code };
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!ModelState.IsValid) return Page();
        var user = await users.FindByIdAsync(Input.UserId.ToString());
        var token = AccountLinks.DecodeToken(Input.Code);
        if (user is null || token is null)
        {
            ModelState.AddModelError("", "This reset link is invalid or has expired. Ask for a new one.");
            return Page();
        }
        var result = await users.ResetPasswordAsync(user, token, Input.Password);
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
                ModelState.AddModelError("", error.Code == "InvalidToken" ? "This reset link is invalid, was used already, or has expired. Ask for a new one." : error.Description);
            return Page();
        }
        if (!await users.IsEmailConfirmedAsync(user))
            await users.ConfirmEmailAsync(user, await users.GenerateEmailConfirmationTokenAsync(user));
        await users.SetLockoutEndDateAsync(user, null);
        await users.ResetAccessFailedCountAsync(user);
        return RedirectToPage("ResetPasswordConfirmation");
    }

    public sealed class InputModel
    {
        public Guid UserId { get; set; }
        [Required] public string Code { get; set; } = "";

        [Required, StringLength(512, MinimumLength = 8, ErrorMessage = "Use at least 8 characters (long passphrases are welcome).")]
        [DataType(DataType.Password), Display(Name = "New password")]
        public string Password { get; set; } = "";

        [Required, DataType(DataType.Password), Compare(nameof(Password), ErrorMessage = "The two passwords do not match.")]
        [Display(Name = "Confirm new password")]
        public string ConfirmPassword { get; set; } = "";
    }
}
