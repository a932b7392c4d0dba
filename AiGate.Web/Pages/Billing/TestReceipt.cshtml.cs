using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Stripe;

namespace AiGate.Web.Pages.Billing;

/// <summary>The local TEST stand-in for Stripe's hosted receipt page (only in local TEST mode; 404 otherwise).</summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.ManageBilling)]
public sealed class TestReceiptModel(OrgContext orgs) : PageModel
{
    public Charge Charge { get; private set; } = null!;

    public async Task<IActionResult> OnGetAsync(string? charge, CancellationToken ct)
    {
        if (HttpContext.RequestServices.GetService<LocalStripe>() is not { } local || string.IsNullOrEmpty(charge)) return NotFound();
        try
        {
            Charge = await local.GetChargeAsync(charge, ct);
        }
        catch (StripeException)
        {
            return NotFound();
        }
        // Only the customer's own user sees it, as only they have Stripe's unguessable receipt link.
        return local.CustomerOf(Charge.CustomerId) == orgs.Current.Id ? Page() : NotFound();
    }
}
