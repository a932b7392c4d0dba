using System.Globalization;
using System.Text.RegularExpressions;
using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Stripe;

namespace AiGate.Web.Features.Billing;

/// <summary>What the user chose to buy on the billing page (or the pricing page's links to it).</summary>
public abstract record Purchase
{
    public sealed record Pack(CreditPackOption Option) : Purchase;
    public sealed record Custom(long AmountCents) : Purchase;
    public sealed record Plan(PlanOption Option) : Purchase;
}

/// <summary>
/// Starts Stripe Checkout and the Billing Portal for a user: makes sure the user has a Stripe customer
/// (created once, its id stored before any session exists, so every later event maps back to the user),
/// then creates the session. The prices come from <see cref="BillingOptions"/>, never from the browser.
/// </summary>
public sealed partial class BillingCheckout(AppDbContext db, IStripeApi stripe, IOptions<BillingOptions> billing)
{
    public async Task<string> StartCheckoutAsync(Guid userId, string email, Purchase purchase, Uri siteBase, CancellationToken ct)
    {
        var customerId = await EnsureCustomerAsync(userId, email, ct);
        var success = new Uri(siteBase, "/billing/success").ToString() + "?session_id={CHECKOUT_SESSION_ID}";
        var cancel = new Uri(siteBase, "/billing/cancel").ToString();
        var request = purchase switch
        {
            Purchase.Pack p => new CheckoutRequest(userId, customerId, "payment", $"AiGate credit pack ${Usd(p.Option.PriceCents)}",
                p.Option.PriceCents, null, "pack", p.Option.Id, success, cancel),
            Purchase.Custom c => new CheckoutRequest(userId, customerId, "payment", $"AiGate credit ${Usd(c.AmountCents)}",
                c.AmountCents, null, "custom", null, success, cancel),
            Purchase.Plan p => new CheckoutRequest(userId, customerId, "subscription", $"AiGate {p.Option.Name} plan",
                string.IsNullOrEmpty(p.Option.StripePriceId) ? p.Option.MonthlyPriceCents : null, NullIfEmpty(p.Option.StripePriceId), "plan", p.Option.Id,
                success, cancel),
            _ => throw new ArgumentOutOfRangeException(nameof(purchase)),
        };
        var session = await stripe.CreateCheckoutSessionAsync(request, ct);
        return session.Url ?? throw new StripeException("the Checkout Session has no url");
    }

    public async Task<string?> StartPortalAsync(Guid userId, Uri siteBase, CancellationToken ct)
    {
        var customerId = await db.Set<BillingAccount>().Where(a => a.UserId == userId).Select(a => a.StripeCustomerId).FirstOrDefaultAsync(ct);
        if (customerId is null) return null;
        var portal = await stripe.CreatePortalSessionAsync(customerId, new Uri(siteBase, "/billing").ToString(), ct);
        return portal.Url;
    }

    private async Task<string> EnsureCustomerAsync(Guid userId, string email, CancellationToken ct)
    {
        var existing = await db.Set<BillingAccount>().Where(a => a.UserId == userId).Select(a => a.StripeCustomerId).FirstOrDefaultAsync(ct);
        if (existing is not null) return existing;
        var customer = await stripe.CreateCustomerAsync(userId, email, ct);
        var free = billing.Value.FreePlan.Id;
        // Insert or fill in, never overwrite: a racing request that stored a customer first wins.
        await db.Database.ExecuteSqlInterpolatedAsync($"""
            insert into billing_accounts (user_id, stripe_customer_id, plan_id, cancel_at_period_end, state_as_of, dunning_step, updated_at)
            values ({userId}, {customer.Id}, {free}, false, 0, 0, now())
            on conflict (user_id) do update set stripe_customer_id = coalesce(billing_accounts.stripe_customer_id, excluded.stripe_customer_id), updated_at = now()
            """, ct);
        return await db.Set<BillingAccount>().Where(a => a.UserId == userId).Select(a => a.StripeCustomerId!).FirstAsync(ct);
    }

    public static string Usd(long cents) => (cents / 100m).ToString("0.00", CultureInfo.InvariantCulture);

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    /// <summary>
    /// A custom amount as people type it, in dollars ("12", "12.5", "12.50", "$1,000") → cents; null for anything else:
    /// negative, more than two decimals, exponents, and commas that are not thousands separators ("1,00" is a decimal
    /// comma somewhere, so it is refused, not read as $100). The range is <see cref="Parse"/>'s to check.
    /// </summary>
    public static long? ParseUsdCents(string? usd)
    {
        var text = (usd ?? "").Trim();
        if (text.Length > 20 || !UsdAmount().IsMatch(text)) return null;
        var dollars = decimal.Parse(text.TrimStart('$').Trim().Replace(",", "", StringComparison.Ordinal), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
        return (long)(dollars * 100);
    }

    [GeneratedRegex(@"^\$?\s*(\d{1,3}(,\d{3})+|\d{1,12})(\.\d{1,2})?$")]
    private static partial Regex UsdAmount();

    /// <summary>Reads the pricing page's link parameters: <c>pack</c>, <c>amount</c> (cents) or <c>plan</c>; null with an error message when invalid.</summary>
    public static (Purchase? Purchase, string? Error) Parse(BillingOptions o, string? pack, long? amountCents, string? plan)
    {
        if (pack is not null)
            return o.FindPack(pack) is { } p ? (new Purchase.Pack(p), null) : (null, $"There is no credit pack \"{pack}\".");
        if (amountCents is { } cents)
            return cents >= o.CustomAmountMinCents && cents <= o.CustomAmountMaxCents
                ? (new Purchase.Custom(cents), null)
                : (null, $"Choose an amount from ${Usd(o.CustomAmountMinCents)} to ${Usd(o.CustomAmountMaxCents)}.");
        if (plan is not null)
            return o.FindPlan(plan) is { MonthlyPriceCents: > 0 } pl ? (new Purchase.Plan(pl), null) : (null, $"There is no paid plan \"{plan}\".");
        return (null, null);
    }
}
