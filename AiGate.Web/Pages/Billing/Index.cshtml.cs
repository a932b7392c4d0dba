using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Stripe;

namespace AiGate.Web.Pages.Billing;

/// <summary>
/// <c>/billing</c>: balance, plan and renewal, buying credit (packs and a custom amount) and plans through
/// Stripe Checkout, plan changes and cancellation through the Billing Portal (the local TEST portal
/// without a Stripe key), and the money history from the ledger. The pricing page links here with
/// <c>?pack=</c>, <c>?amount=</c> (cents) or <c>?plan=</c>, which preselect the choice; signed-out visitors
/// are sent to log in and come back to the same address.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.ManageBilling)]
public sealed partial class IndexModel(
    AppDbContext db, Ledger ledger, BillingCheckout checkout, IOptions<BillingOptions> billing, IOptions<StripeOptions> stripe,
    IOptions<EmailOptions> email, ILogger<IndexModel> logger, OrgContext orgs) : PageModel
{
    public const int HistorySize = 50;

    public BillingOptions Options => billing.Value;
    public bool LocalMode => stripe.Value.IsLocal;
    public CreditBalance Balance { get; private set; } = new(0, 0);
    public BillingAccount? Account { get; private set; }
    public PlanOption Plan { get; private set; } = null!;
    /// <summary>The account's rate limits: plan, usage tier (by <see cref="PaidCents"/>) or an operator's override.</summary>
    public AccountLimits Limits { get; private set; } = null!;
    public long PaidCents { get; private set; }
    public UsageTierOption? NextTier { get; private set; }
    public IReadOnlyList<HistoryRow> History { get; private set; } = [];
    public bool HasSubscription => Account?.HasLiveSubscription == true;

    /// <summary>The preselected choice: <c>pack:&lt;id&gt;</c>, <c>custom</c> or <c>plan:&lt;id&gt;</c>.</summary>
    public string? Selected { get; private set; }
    public string CustomAmountUsd { get; private set; } = "";
    public string? Error { get; private set; }

    public async Task OnGetAsync(string? pack, long? amount, string? plan, CancellationToken ct)
    {
        var (purchase, error) = BillingCheckout.Parse(Options, pack, amount, plan);
        Error = error;
        Select(purchase, amount);
        await LoadAsync(ct);
    }

    /// <summary>Buy a pack (<paramref name="choice"/> = <c>pack:&lt;id&gt;</c>) or a custom amount (<c>custom</c>, in USD).</summary>
    public async Task<IActionResult> OnPostBuyAsync(string? choice, string? customAmount, CancellationToken ct)
    {
        Purchase? purchase = null;
        if (choice is not null && choice.StartsWith("pack:", StringComparison.Ordinal))
        {
            (purchase, Error) = BillingCheckout.Parse(Options, choice[5..], null, null);
        }
        else if (choice == "custom")
        {
            CustomAmountUsd = customAmount ?? "";
            if (BillingCheckout.ParseUsdCents(customAmount) is { } cents)
                (purchase, Error) = BillingCheckout.Parse(Options, null, cents, null);
            else
                Error = $"Enter an amount in US dollars, e.g. 20 or 20.50 (from ${BillingCheckout.Usd(Options.CustomAmountMinCents)} to ${BillingCheckout.Usd(Options.CustomAmountMaxCents)}).";
        }
        else
        {
            Error = "Choose a credit pack or an amount.";
        }
        Selected = choice;
        return purchase is null ? await PageAsync(ct) : await StartAsync(purchase, ct);
    }

    public async Task<IActionResult> OnPostSubscribeAsync(string? plan, CancellationToken ct)
    {
        (var purchase, Error) = BillingCheckout.Parse(Options, null, null, plan ?? "");
        Selected = $"plan:{plan}";
        if (purchase is null) return await PageAsync(ct);
        var current = await db.Set<BillingAccount>().AsNoTracking().FirstOrDefaultAsync(a => a.UserId == orgs.Current.Id, ct);
        if (current?.HasLiveSubscription == true)
            return await PortalAsync(ct);   // already subscribed: plan changes go through the portal, never a second subscription
        return await StartAsync(purchase, ct);
    }

    public Task<IActionResult> OnPostManageAsync(CancellationToken ct) => PortalAsync(ct);

    /// <summary>
    /// <c>/billing?handler=Receipt&amp;id=cs_…</c>: the user's own payment's receipt. Invoices keep their hosted page from
    /// <c>invoice.paid</c>; a one-off payment's receipt is the charge's <c>receipt_url</c> (payment intent → latest charge),
    /// looked up once and kept.
    /// </summary>
    public async Task<IActionResult> OnGetReceiptAsync(string? id, [FromServices] IStripeApi stripe, CancellationToken ct)
    {
        var orgId = orgs.Current.Id;
        var payment = await db.Set<StripePayment>().FirstOrDefaultAsync(p => p.Id == id && p.UserId == orgId, ct);
        if (payment is null) return NotFound();
        if (payment.ReceiptUrl is null && payment.PaymentIntentId is not null)
        {
            try
            {
                var intent = await stripe.GetPaymentIntentAsync(payment.PaymentIntentId, ct);
                if (intent.LatestChargeId is not null && (await stripe.GetChargeAsync(intent.LatestChargeId, ct)).ReceiptUrl is { } url)
                {
                    payment.ReceiptUrl = url.Length <= 1000 ? url : null;
                    await db.SaveChangesAsync(ct);
                }
            }
            catch (StripeException ex)
            {
                LogStripeFailed((int)ex.HttpStatusCode, ex.StripeError?.Type, ex.StripeError?.Code);
            }
        }
        if (payment.ReceiptUrl is { } receipt && (receipt.StartsWith("https://", StringComparison.Ordinal) || receipt.StartsWith('/')))
            return Redirect(receipt);
        Error = "The receipt is not available right now; please try again in a minute.";
        return await PageAsync(ct);
    }

    private async Task<IActionResult> PortalAsync(CancellationToken ct)
    {
        try
        {
            var url = await checkout.StartPortalAsync(orgs.Current.Id, SiteBase(), ct);
            if (url is not null) return Redirect(url);
            Error = "There is no subscription to manage yet.";
        }
        catch (StripeException ex)
        {
            LogStripeFailed((int)ex.HttpStatusCode, ex.StripeError?.Type, ex.StripeError?.Code);
            Error = StripeErrors.Describe(ex, "Nothing was changed.");
        }
        return await PageAsync(ct);
    }

    private async Task<IActionResult> StartAsync(Purchase purchase, CancellationToken ct)
    {
        try
        {
            var email = User.Identity?.Name ?? "";
            return Redirect(await checkout.StartCheckoutAsync(orgs.Current.Id, email, purchase, SiteBase(), ct));
        }
        catch (StripeException ex)
        {
            LogStripeFailed((int)ex.HttpStatusCode, ex.StripeError?.Type, ex.StripeError?.Code);
            Error = StripeErrors.Describe(ex, "Nothing was charged.");
            return await PageAsync(ct);
        }
    }

    private async Task<IActionResult> PageAsync(CancellationToken ct)
    {
        await LoadAsync(ct);
        return Page();
    }

    private void Select(Purchase? purchase, long? amount)
    {
        Selected = purchase switch
        {
            Purchase.Pack p => $"pack:{p.Option.Id}",
            Purchase.Custom => "custom",
            Purchase.Plan p => $"plan:{p.Option.Id}",
            _ => Options.CreditPacks.Count > 0 ? $"pack:{Options.CreditPacks[0].Id}" : "custom",
        };
        if (purchase is Purchase.Custom c) CustomAmountUsd = BillingCheckout.Usd(c.AmountCents);
        else if (amount is { } cents && cents > 0) CustomAmountUsd = BillingCheckout.Usd(cents);
    }

    private async Task LoadAsync(CancellationToken ct)
    {
        var orgId = orgs.Current.Id;
        Balance = await ledger.GetBalanceAsync(orgId, ct);
        Account = await db.Set<BillingAccount>().AsNoTracking().FirstOrDefaultAsync(a => a.UserId == orgId, ct);
        Plan = Options.FindPlan(Account?.PlanId) ?? Options.FreePlan;
        PaidCents = await UsageTiers.PaidCentsAsync(db, orgId, ct);
        // An operator's overrides are the owner's (see ApiKeyCache): they follow the person, not the organization.
        var overrides = await OrgMember.OwnerOf(db, orgId)
            .Select(u => new { u.RequestsPerMinuteOverride, u.TokensPerMinuteOverride }).FirstAsync(ct);
        Limits = UsageTiers.Resolve(Options, Account?.PlanId, PaidCents, overrides.RequestsPerMinuteOverride, overrides.TokensPerMinuteOverride);
        NextTier = Options.UsageTiers.Where(t => t.MinPaidCents > PaidCents).MinBy(t => t.MinPaidCents);

        // Money history: every ledger entry but metered usage (the dashboard lists requests), newest first,
        // with the Stripe payment it came from (receipt or invoice link) when there is one.
        var entries = await db.Set<LedgerEntry>().AsNoTracking()
            .Where(e => e.UserId == orgId && e.Kind != LedgerKinds.Usage)
            .OrderByDescending(e => e.CreatedAt).ThenByDescending(e => e.Id).Take(HistorySize)
            .Select(e => new { e.Id, e.CreatedAt, e.Kind, e.AmountMicros, e.Reference, e.IdempotencyKey })
            .ToListAsync(ct);
        var stripeIds = entries.Select(e => StripeObjectOf(e.IdempotencyKey)).OfType<string>().Distinct().ToList();
        var paidCents = await db.Set<StripePayment>().AsNoTracking().Where(p => p.UserId == orgId && stripeIds.Contains(p.Id))
            .Select(p => new { p.Id, p.AmountCents }).ToDictionaryAsync(p => p.Id, p => p.AmountCents, ct);
        History = entries.Select(e =>
        {
            var stripeId = StripeObjectOf(e.IdempotencyKey);
            long? paid = stripeId is not null && paidCents.TryGetValue(stripeId, out var cents) ? cents : null;
            return new HistoryRow(e.Id, e.CreatedAt, e.Kind, e.AmountMicros, e.Reference, paid, stripeId);
        }).ToList();
    }

    /// <summary>The Checkout Session or invoice id inside a purchase's or grant's idempotency key (<c>stripe:checkout:cs_…</c>).</summary>
    internal static string? StripeObjectOf(string? key) =>
        key is not null && (key.StartsWith("stripe:checkout:", StringComparison.Ordinal) || key.StartsWith("stripe:invoice:", StringComparison.Ordinal))
            ? key[(key.IndexOf(':', 7) + 1)..]
            : null;

    /// <summary>Where Stripe sends the user back: the configured public address, else this request's.</summary>
    private Uri SiteBase() =>
        !string.IsNullOrWhiteSpace(email.Value.BaseUrl) ? new Uri(email.Value.BaseUrl) : new Uri($"{Request.Scheme}://{Request.Host}");

    public static string Date(DateTimeOffset at) => at.UtcDateTime.ToString("d MMM yyyy", CultureInfo.InvariantCulture);

    public sealed record HistoryRow(long Id, DateTimeOffset At, string Kind, long AmountMicros, string? Reference, long? PaidCents, string? StripeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe call from the billing page failed: {Status} {ErrorType} {Code}")]
    private partial void LogStripeFailed(int status, string? errorType, string? code);
}
