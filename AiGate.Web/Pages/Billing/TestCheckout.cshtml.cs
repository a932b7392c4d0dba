using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Stripe;
using Stripe.Checkout;

namespace AiGate.Web.Pages.Billing;

/// <summary>
/// The local TEST checkout (no Stripe key; never in Production, which refuses to start that way): stands
/// in for Stripe's hosted Checkout page. Paying marks the session paid in <see cref="LocalStripe"/> and has
/// <see cref="LocalCheckout"/> post Stripe's events, signed, to our own webhook endpoint; then it returns to
/// the success page, which retrieves the session like it would from Stripe.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.ManageBilling)]
public sealed class TestCheckoutModel(OrgContext orgs) : PageModel
{
    public Session Session { get; private set; } = null!;
    public string? Error { get; private set; }

    public IActionResult OnGet(string? session) => Load(session) ? Page() : NotFound();

    public async Task<IActionResult> OnPostPayAsync(string? session, CancellationToken ct)
    {
        if (!Load(session)) return NotFound();
        var local = HttpContext.RequestServices.GetRequiredService<LocalStripe>();
        var urls = local.ReturnUrls(Session.Id)!.Value;
        if (Session.Status != "open") return Redirect(urls.Success);   // paid already (a double click): nothing to do twice
        var events = local.Pay(Session.Id);
        var delivered = await HttpContext.RequestServices.GetRequiredService<LocalCheckout>()
            .DeliverAsync(new Uri($"{Request.Scheme}://{Request.Host}"), events, ct);
        if (!delivered)
        {
            Error = "The app's webhook endpoint refused the TEST event; see the log.";
            return Page();
        }
        return Redirect(urls.Success);
    }

    public IActionResult OnPostCancel(string? session) =>
        Load(session) ? Redirect(HttpContext.RequestServices.GetRequiredService<LocalStripe>().ReturnUrls(Session.Id)!.Value.Cancel) : NotFound();

    private bool Load(string? id)
    {
        var local = HttpContext.RequestServices.GetService<LocalStripe>();
        if (local is null || id is null || local.FindSession(id) is not { } found || found.ClientReferenceId != orgs.Current.Id.ToString()) return false;
        Session = found;
        return true;
    }
}
