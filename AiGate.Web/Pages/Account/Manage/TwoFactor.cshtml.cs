using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>Two-factor status, new recovery codes, and turning it off (with the password, ASVS 7.5.1; mailed to the owner).</summary>
public sealed class TwoFactorModel(UserManager<AppUser> users, SignInManager<AppUser> signIn, AppDbContext db, EmailOutbox outbox) : PageModel
{
    public bool Enabled { get; private set; }
    public int RecoveryCodesLeft { get; private set; }
    [BindProperty] public DisableInput Input { get; set; } = new();
    [TempData] public string? StatusMessage { get; set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        await LoadAsync(user);
        return Page();
    }

    public async Task<IActionResult> OnPostRecoveryCodesAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        if (!user.TwoFactorEnabled) return RedirectToPage();
        var codes = await users.GenerateNewTwoFactorRecoveryCodesAsync(user, 10);
        TempData[ShowRecoveryCodesModel.TempDataKey] = string.Join(' ', codes ?? []);
        return RedirectToPage("ShowRecoveryCodes");
    }

    public async Task<IActionResult> OnPostDisableAsync(CancellationToken ct)
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        if (!ModelState.IsValid || !await users.CheckPasswordAsync(user, Input.Password))
        {
            ModelState.Clear();
            ModelState.AddModelError($"{nameof(Input)}.{nameof(Input.Password)}", "That is not your password.");
            await LoadAsync(user);
            return Page();
        }
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var result = await users.SetTwoFactorEnabledAsync(user, false);
        if (!result.Succeeded) throw new InvalidOperationException("Could not turn two-factor authentication off.");
        await users.ResetAuthenticatorKeyAsync(user);   // a later set-up starts with a new secret
        outbox.Enqueue(user.Email!, EmailTemplates.TwoFactorDisabled(), user.Id);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        await signIn.RefreshSignInAsync(user);
        StatusMessage = "Two-factor authentication is off.";
        return RedirectToPage();
    }

    private async Task LoadAsync(AppUser user)
    {
        Enabled = user.TwoFactorEnabled;
        RecoveryCodesLeft = Enabled ? await users.CountRecoveryCodesAsync(user) : 0;
    }

    public sealed class DisableInput
    {
        [Required, DataType(DataType.Password), Display(Name = "Your password")]
        public string Password { get; set; } = "";
    }
}
