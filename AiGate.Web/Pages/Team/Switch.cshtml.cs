using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Team;

/// <summary>
/// The switcher's form (in the navigation): makes another of the user's organizations the current one and goes back
/// to the page it was posted from (a local address only). 404 for an organization the user is not a member of.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
public sealed class SwitchModel(OrgContext orgs) : PageModel
{
    public IActionResult OnGet() => RedirectToPage("/Dashboard/Index");

    public async Task<IActionResult> OnPostAsync(Guid org, string? returnUrl, CancellationToken ct)
    {
        if (!await orgs.SwitchAsync(User.GetUserId(), org, ct)) return NotFound();
        return LocalRedirect(Url.IsLocalUrl(returnUrl) ? returnUrl : "/dashboard");
    }
}
