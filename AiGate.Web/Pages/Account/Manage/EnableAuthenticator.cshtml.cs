using System.ComponentModel.DataAnnotations;
using System.Text;
using System.Text.Encodings.Web;
using AiGate.Web.Data;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using QRCoder;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>
/// Set up an authenticator app: a QR code (PNG data URI, allowed by our CSP's img-src) and the same
/// key as text; a first valid code turns 2FA on and shows ten recovery codes once.
/// </summary>
public sealed class EnableAuthenticatorModel(UserManager<AppUser> users, SignInManager<AppUser> signIn, AppDbContext db, EmailOutbox outbox) : PageModel
{
    public string SharedKey { get; private set; } = "";
    public string QrCodeDataUri { get; private set; } = "";
    [BindProperty] public InputModel Input { get; set; } = new();

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        await LoadSharedKeyAsync(user);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        if (!ModelState.IsValid)
        {
            await LoadSharedKeyAsync(user);
            return Page();
        }
        var code = Input.Code.Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
        if (!await users.VerifyTwoFactorTokenAsync(user, users.Options.Tokens.AuthenticatorTokenProvider, code))
        {
            ModelState.AddModelError($"{nameof(Input)}.{nameof(Input.Code)}", "That code is not valid. Check the time on your phone and try the next code.");
            await LoadSharedKeyAsync(user);
            return Page();
        }

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var enabled = await users.SetTwoFactorEnabledAsync(user, true);
        if (!enabled.Succeeded) throw new InvalidOperationException("Could not turn two-factor authentication on.");
        var codes = await users.GenerateNewTwoFactorRecoveryCodesAsync(user, 10);
        outbox.Enqueue(user.Email!, EmailTemplates.TwoFactorEnabled(), user.Id);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        await signIn.RefreshSignInAsync(user);

        TempData[ShowRecoveryCodesModel.TempDataKey] = string.Join(' ', codes ?? []);
        return RedirectToPage("ShowRecoveryCodes");
    }

    private async Task LoadSharedKeyAsync(AppUser user)
    {
        var key = await users.GetAuthenticatorKeyAsync(user);
        if (string.IsNullOrEmpty(key))
        {
            await users.ResetAuthenticatorKeyAsync(user);
            await signIn.RefreshSignInAsync(user);   // the reset renews the security stamp; keep this session
            key = await users.GetAuthenticatorKeyAsync(user);
        }
        SharedKey = Format(key!);
        var uri = $"otpauth://totp/{UrlEncoder.Default.Encode("AiGate")}:{UrlEncoder.Default.Encode(user.Email!)}?secret={key}&issuer={UrlEncoder.Default.Encode("AiGate")}&digits=6&period=30";
        using var data = QRCodeGenerator.GenerateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        QrCodeDataUri = "data:image/png;base64," + Convert.ToBase64String(new PngByteQRCode(data).GetGraphic(5));
    }

    /// <summary>Groups of four lower-case characters, easier to type into an app.</summary>
    private static string Format(string key)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < key.Length; i += 4)
            sb.Append(key.AsSpan(i, Math.Min(4, key.Length - i))).Append(' ');
        return sb.ToString().TrimEnd().ToLowerInvariant();
    }

    public sealed class InputModel
    {
        [Required, StringLength(7, MinimumLength = 6), Display(Name = "Verification code")]
        public string Code { get; set; } = "";
    }
}
