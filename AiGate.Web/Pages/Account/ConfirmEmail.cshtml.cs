using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Account;

/// <summary>The link from the confirmation mail.</summary>
public sealed class ConfirmEmailModel(UserManager<AppUser> users) : PageModel
{
    public bool Confirmed { get; private set; }

    /// <summary>Where logging in leads next: the local page the sign-up started from (an invitation), if any.</summary>
    public string? ReturnUrl { get; private set; }

    public async Task OnGetAsync(Guid? userId, string? code, string? returnUrl)
    {
        ReturnUrl = Url.IsLocalUrl(returnUrl) ? returnUrl : null;
        var token = AccountLinks.DecodeToken(code);
        if (userId is null || token is null) return;
        var user = await users.FindByIdAsync(userId.Value.ToString());
        if (user is null) return;
        Confirmed = user.EmailConfirmed || (await users.ConfirmEmailAsync(user, token)).Succeeded;
    }
}
