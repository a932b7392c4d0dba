using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Stripe;
using Stripe.Checkout;

namespace AiGate.Web.Pages.Billing;

/// <summary>
/// <c>/billing/success?session_id=cs_…</c>, where Stripe Checkout returns. It retrieves the session from
/// Stripe and fulfils it (Stripe recommends fulfilling here and in the webhook; whichever runs first
/// credits, the other finds it done). Only the session's own user (its <c>client_reference_id</c>) may use it.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.ManageBilling)]
public sealed partial class SuccessModel(IStripeApi stripe, CheckoutFulfilment fulfilment, Ledger ledger, ILogger<SuccessModel> logger, OrgContext orgs) : PageModel
{
    public Session? Session { get; private set; }
    public long BalanceMicros { get; private set; }
    public bool Unavailable { get; private set; }

    public async Task<IActionResult> OnGetAsync(string? session_id, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(session_id) || !session_id.StartsWith("cs_", StringComparison.Ordinal) || session_id.Length > 255) return NotFound();
        var orgId = orgs.Current.Id;
        try
        {
            var session = await stripe.GetCheckoutSessionAsync(session_id, ct);
            if (session.ClientReferenceId != orgId.ToString()) return NotFound();
            Session = session;
            if (session.Mode == "payment" && session.PaymentStatus == "paid") await fulfilment.FulfilAsync(session, ct);
        }
        catch (StripeException ex) when (ex.HttpStatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return NotFound();
        }
        catch (StripeException ex)
        {
            // The webhook will still fulfil the order; the page just cannot confirm it now.
            LogUnavailable((int)ex.HttpStatusCode, ex.StripeError?.Type);
            Unavailable = true;
        }
        BalanceMicros = (await ledger.GetBalanceAsync(orgId, ct)).BalanceMicros;
        return Page();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Success page could not retrieve the Checkout Session: {Status} {ErrorType}")]
    private partial void LogUnavailable(int status, string? errorType);
}
