using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>
/// Deleting an account (docs/accounts.md): the user row goes, and with it (foreign keys, on delete cascade)
/// roles, tokens, its outbox mail and — as later features add them — API keys and settings. Ledger and
/// usage rows are kept for accounting with the user id removed. A remaining balance is forfeited.
/// </summary>
public sealed class DeleteModel(UserManager<AppUser> users, SignInManager<AppUser> signIn) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        if (!ModelState.IsValid) return Page();
        if (!await users.CheckPasswordAsync(user, Input.Password))
        {
            ModelState.AddModelError($"{nameof(Input)}.{nameof(Input.Password)}", "That is not your password.");
            return Page();
        }
        var result = await users.DeleteAsync(user);
        if (!result.Succeeded) throw new InvalidOperationException("Could not delete the account.");
        await signIn.SignOutAsync();
        return RedirectToPage("/Account/Deleted");
    }

    public sealed class InputModel
    {
        [Required, DataType(DataType.Password), Display(Name = "Your password")]
        public string Password { get; set; } = "";

        [Range(typeof(bool), "true", "true", ErrorMessage = "Tick the box to confirm.")]
        [Display(Name = "I understand that this cannot be undone and that my remaining balance is forfeited")]
        public bool Understood { get; set; }
    }
}
