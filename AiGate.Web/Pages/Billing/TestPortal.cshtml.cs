using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Stripe;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Billing;

/// <summary>
/// The local TEST stand-in for Stripe's Billing Portal: switch plan or cancel. Each action sends the
/// events Stripe would (<c>customer.subscription.updated</c> + <c>invoice.paid</c>, or
/// <c>customer.subscription.deleted</c>), signed, to our own webhook endpoint.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.ManageBilling)]
public sealed class TestPortalModel(AppDbContext db, IOptions<BillingOptions> billing, OrgContext orgs) : PageModel
{
    public BillingOptions Options => billing.Value;
    public BillingAccount? Account { get; private set; }
    public Subscription? Subscription { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) => await LoadAsync(ct) ? Page() : NotFound();

    public async Task<IActionResult> OnPostSwitchAsync(string? plan, CancellationToken ct)
    {
        if (!await LoadAsync(ct)) return NotFound();
        if (Subscription is null || Options.FindPlan(plan) is not { MonthlyPriceCents: > 0 } target) return RedirectToPage();
        return await DeliverAsync(Local.ChangePlan(Subscription.Id, target), ct);
    }

    public async Task<IActionResult> OnPostCancelAsync(CancellationToken ct)
    {
        if (!await LoadAsync(ct)) return NotFound();
        if (Subscription is null) return RedirectToPage();
        return await DeliverAsync(Local.Cancel(Subscription.Id), ct);
    }

    private LocalStripe Local => HttpContext.RequestServices.GetRequiredService<LocalStripe>();

    private async Task<IActionResult> DeliverAsync(IReadOnlyList<System.Text.Json.Nodes.JsonObject> events, CancellationToken ct)
    {
        await HttpContext.RequestServices.GetRequiredService<LocalCheckout>().DeliverAsync(new Uri($"{Request.Scheme}://{Request.Host}"), events, ct);
        return Redirect("/billing");
    }

    private async Task<bool> LoadAsync(CancellationToken ct)
    {
        if (HttpContext.RequestServices.GetService<LocalStripe>() is not { } local) return false;
        var orgId = orgs.Current.Id;
        Account = await db.Set<BillingAccount>().AsNoTracking().FirstOrDefaultAsync(a => a.UserId == orgId, ct);
        var sub = local.FindSubscription(Account?.SubscriptionId);
        Subscription = sub is not null && sub.Status != "canceled" ? sub : null;
        return true;
    }
}
