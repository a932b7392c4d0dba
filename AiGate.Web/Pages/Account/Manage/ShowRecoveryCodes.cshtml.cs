using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>Shows freshly generated recovery codes once (they travel in TempData, never in a URL or a log).</summary>
public sealed class ShowRecoveryCodesModel : PageModel
{
    public const string TempDataKey = "RecoveryCodes";
    public IReadOnlyList<string> Codes { get; private set; } = [];

    public IActionResult OnGet()
    {
        if (TempData[TempDataKey] is not string codes) return RedirectToPage("TwoFactor");
        Codes = codes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return Page();
    }
}
