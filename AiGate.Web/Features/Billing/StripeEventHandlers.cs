using System.Text.Json;
using Stripe;
using Stripe.Checkout;
using AiGate.Web.Features.Credits;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// What each Stripe event does to an account, inside the webhook's transaction. Returns a short
/// outcome for the <c>stripe_events</c> row. Amounts always come from Stripe's objects.
/// </summary>
public sealed class StripeEventHandlers(CheckoutFulfilment fulfilment, BillingAccounts accounts, IStripeApi stripe, IOptions<BillingOptions> billing)
{
    /// <param name="raw">The event's <c>data.object</c> as it came, to check the fields Stripe always sends are there.</param>
    public async Task<string> HandleAsync(BillingTransaction tx, Event e, JsonElement raw, long created, CancellationToken ct)
    {
        switch (e.Type)
        {
            case "checkout.session.completed":
            case "checkout.session.async_payment_succeeded":
            {
                var session = Read<Session>(e, raw);
                if (session.Mode == "subscription") return await LinkSubscriptionAsync(tx, session, created, ct);
                if (session.PaymentStatus != "paid") return $"session {session.Id} not paid yet ({session.PaymentStatus}); waiting for async_payment_succeeded";
                var result = await fulfilment.FulfilAsync(tx, session, ct);
                return result.Describe(session.Id);
            }
            case "checkout.session.async_payment_failed":
            {
                var session = Read<Session>(e, raw);
                return $"session {session.Id}: the delayed payment failed; nothing credited";
            }
            case "invoice.paid":
                return await InvoicePaidAsync(tx, Read<Invoice>(e, raw), created, ct);
            case "invoice.payment_failed":
                return await InvoiceFailedAsync(tx, Read<Invoice>(e, raw), created, ct);
            case "customer.subscription.created":
            case "customer.subscription.updated":
            case "customer.subscription.deleted":
                return await SubscriptionChangedAsync(tx, Read<Subscription>(e, raw), e.Type.EndsWith(".deleted", StringComparison.Ordinal), created, ct);
            case "charge.refunded":
                return await ChargeRefundedAsync(tx, Read<Charge>(e, raw), e.Id, ct);
            case "charge.dispute.created":
                return await DisputeCreatedAsync(tx, Read<Dispute>(e, raw), e.Id, ct);
            default:
                return "not handled (event type not used by AiGate)";
        }
    }

    private async Task<string> LinkSubscriptionAsync(BillingTransaction tx, Session session, long created, CancellationToken ct)
    {
        var userId = await accounts.ResolveUserAsync(tx, session.CustomerId, session.ClientReferenceId ?? Meta(session.Metadata, "user_id"), ct);
        if (userId is null) return $"session {session.Id}: unknown customer";
        var plan = billing.Value.FindPlan(Meta(session.Metadata, "item_id"));
        if (plan is null || session.SubscriptionId is null) return $"session {session.Id}: no plan or subscription on the session";
        var applied = await accounts.ApplySubscriptionStateAsync(tx, userId.Value, created,
            new SubscriptionState(plan.Id, session.SubscriptionId, "active", null, false), ct);
        return applied ? $"subscribed to {plan.Id} ({session.SubscriptionId})" : "subscription linked earlier by a newer event";
    }

    private async Task<string> InvoicePaidAsync(BillingTransaction tx, Invoice invoice, long created, CancellationToken ct)
    {
        var details = invoice.Parent?.SubscriptionDetails;
        var userId = await accounts.ResolveUserAsync(tx, invoice.CustomerId, Meta(details?.Metadata, "user_id"), ct);
        if (userId is null) return $"invoice {invoice.Id}: unknown customer";
        if (details?.SubscriptionId is not { } subscriptionId) return $"invoice {invoice.Id}: not a subscription invoice; nothing granted";
        var plan = PlanOf(invoice);
        if (plan is null) return $"invoice {invoice.Id}: no plan matches its price or metadata; nothing granted";

        var line = invoice.Lines?.Data?.FirstOrDefault();
        DateTimeOffset? periodEnd = line?.Period is { } p ? new DateTimeOffset(DateTime.SpecifyKind(p.End, DateTimeKind.Utc)) : null;
        await accounts.ApplySubscriptionStateAsync(tx, userId.Value, created, new SubscriptionState(plan.Id, subscriptionId, "active", periodEnd, null), ct);
        await accounts.ClearPastDueAsync(tx, userId.Value, ct);

        // Only a new subscription's first invoice and each renewal grant an allowance: a plan switch billed at once
        // (subscription_update) or any other invoice would otherwise grant a second one for the same period.
        if (invoice.BillingReason is not ("subscription_create" or "subscription_cycle"))
            return $"invoice {invoice.Id}: billing reason {invoice.BillingReason ?? "none"}; plan updated, nothing granted";

        var paidForPlan = Math.Min(invoice.AmountPaid, invoice.TotalExcludingTax ?? invoice.AmountPaid);
        // Since API version 2025-03-31 an invoice names its payment intent only in its payments list, which webhooks
        // leave out unless expanded; a refund or dispute of the invoice then finds the row through Stripe (see FindPaymentAsync).
        var paymentIntent = invoice.Payments?.Data?.FirstOrDefault(pay => pay.Payment?.Type == "payment_intent")?.Payment.PaymentIntentId;
        var grant = Allowance(plan, paidForPlan);
        // The allowance is granted once per invoice, whatever order or how often the events arrive; a $0 invoice
        // gets its row too, so a later event for it cannot grant.
        await using (var insert = tx.Command("""
            insert into stripe_payments (id, user_id, kind, payment_intent_id, amount_cents, currency, credited_micros, clawed_back_micros, receipt_url, created_at)
            values ($1, $2, 'plan', $3, $4, $5, $6, 0, $7, now()) on conflict do nothing returning 1
            """, invoice.Id, userId.Value, paymentIntent, invoice.AmountPaid, invoice.Currency, grant, invoice.HostedInvoiceUrl))
        {
            insert.Parameters[2].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Varchar;
            insert.Parameters[6].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Varchar;
            if (await insert.ExecuteScalarAsync(ct) is null) return $"invoice {invoice.Id}: allowance already granted";
        }
        if (grant == 0) return $"invoice {invoice.Id}: {invoice.AmountPaid} cents paid ({plan.Id}, a trial or a full discount); nothing granted";
        await Ledger.PostAsync(tx.Connection, tx.Transaction, userId.Value, LedgerKinds.Grant, grant,
            $"{plan.Name} plan allowance, invoice {invoice.Id}", $"stripe:invoice:{invoice.Id}", ct);
        return $"granted {Money.Usd(grant)} USD of {Money.Usd(plan.MonthlyAllowanceMicros)} ({plan.Id}, {paidForPlan} of {plan.MonthlyPriceCents} cents paid) for invoice {invoice.Id}";
    }

    /// <summary>
    /// The allowance an invoice pays for (docs/billing.md): the plan's allowance in proportion to what was paid for it
    /// against the plan's price, never more than the allowance. A coupon's half price buys half, a trial's or a full
    /// discount's $0 buys nothing, tax (left out of <paramref name="paidCents"/>) buys nothing.
    /// </summary>
    internal static long Allowance(PlanOption plan, long paidCents) =>
        plan.MonthlyPriceCents <= 0 || paidCents <= 0 ? 0
        : paidCents >= plan.MonthlyPriceCents ? plan.MonthlyAllowanceMicros
        : Share(plan.MonthlyAllowanceMicros, paidCents, plan.MonthlyPriceCents);

    private async Task<string> InvoiceFailedAsync(BillingTransaction tx, Invoice invoice, long created, CancellationToken ct)
    {
        var userId = await accounts.ResolveUserAsync(tx, invoice.CustomerId, Meta(invoice.Parent?.SubscriptionDetails?.Metadata, "user_id"), ct);
        if (userId is null) return $"invoice {invoice.Id}: unknown customer";
        await accounts.MarkPastDueAsync(tx, userId.Value, created, ct);
        return $"invoice {invoice.Id}: payment failed (attempt {invoice.AttemptCount}); account past due";
    }

    private async Task<string> SubscriptionChangedAsync(BillingTransaction tx, Subscription sub, bool deleted, long created, CancellationToken ct)
    {
        var userId = await accounts.ResolveUserAsync(tx, sub.CustomerId, Meta(sub.Metadata, "user_id"), ct);
        if (userId is null) return $"subscription {sub.Id}: unknown customer";
        // Ended subscriptions fall back to the free plan; the balance is kept.
        var ended = deleted || sub.Status is "canceled" or "incomplete_expired" or "unpaid";
        var plan = ended ? billing.Value.FreePlan : PlanOf(sub) ?? billing.Value.FreePlan;
        // Since API version 2025-03-31 the billing period is per item; a plan subscription has one.
        var itemPeriodEnd = sub.Items?.Data?.FirstOrDefault()?.CurrentPeriodEnd;
        var periodEnd = ended || itemPeriodEnd is not { } end || end == default ? (DateTimeOffset?)null : new DateTimeOffset(DateTime.SpecifyKind(end, DateTimeKind.Utc));
        var applied = await accounts.ApplySubscriptionStateAsync(tx, userId.Value, created,
            new SubscriptionState(plan.Id, sub.Id, deleted ? "canceled" : sub.Status, periodEnd, sub.CancelAtPeriodEnd, ClearPeriodEnd: ended), ct);
        return applied ? $"subscription {sub.Id}: {(deleted ? "canceled" : sub.Status)}, plan {plan.Id}" : $"subscription {sub.Id}: older than the state we have; ignored";
    }

    private async Task<string> ChargeRefundedAsync(BillingTransaction tx, Charge charge, string eventId, CancellationToken ct)
    {
        if (charge.PaymentIntentId is null || charge.Amount <= 0) return $"charge {charge.Id}: no payment intent";
        var payment = await FindPaymentAsync(tx, charge.PaymentIntentId, ct);
        if (payment is null) return $"charge {charge.Id}: no AiGate payment for {charge.PaymentIntentId}";
        // amount_refunded is cumulative: take back the refunded share of the credit, less what was taken already.
        var target = Share(payment.CreditedMicros, Math.Min(charge.AmountRefunded, charge.Amount), charge.Amount);
        if (!await accounts.LockUserAsync(tx, payment.UserId, ct))
            return await DeletedAccountAsync(tx, payment, target, $"charge {charge.Id} ({charge.PaymentIntentId}) refunded {charge.AmountRefunded} of {charge.Amount} cents", ct);
        var (taken, debt) = await accounts.ClawBackAsync(tx, payment, target, $"refund of {charge.Id}", $"stripe:refund:{eventId}", ct);
        return $"charge {charge.Id} refunded {charge.AmountRefunded} of {charge.Amount} cents: took back {Money.Usd(taken)} USD, {Money.Usd(debt)} USD left as debt";
    }

    private async Task<string> DisputeCreatedAsync(BillingTransaction tx, Dispute dispute, string eventId, CancellationToken ct)
    {
        var payment = dispute.PaymentIntentId is null ? null : await FindPaymentAsync(tx, dispute.PaymentIntentId, ct);
        if (payment is null) return $"dispute {dispute.Id}: no AiGate payment for charge {dispute.ChargeId}";
        var target = Share(payment.CreditedMicros, Math.Min(dispute.Amount, payment.AmountCents), payment.AmountCents);
        if (!await accounts.LockUserAsync(tx, payment.UserId, ct))
            return await DeletedAccountAsync(tx, payment, target, $"dispute {dispute.Id} ({dispute.Reason}) on {dispute.ChargeId} ({dispute.PaymentIntentId})", ct);
        await accounts.FlagDisputedAsync(tx, payment.UserId, ct);
        var (taken, debt) = await accounts.ClawBackAsync(tx, payment, target, $"dispute {dispute.Id} on {dispute.ChargeId}", $"stripe:dispute:{eventId}", ct);
        return $"dispute {dispute.Id} ({dispute.Reason}): keys frozen, took back {Money.Usd(taken)} USD, {Money.Usd(debt)} USD left as debt";
    }

    /// <summary>
    /// The payment a refund or dispute is for, locked. A one-off payment's row has its payment intent from the Checkout
    /// Session; a plan invoice's does not (the invoice.paid event does not carry it since API version 2025-03-31), so an
    /// unknown payment intent is looked up in Stripe's invoice payments — a call to Stripe inside the webhook's transaction,
    /// which only refunds and disputes of plan invoices make (and only the first time: the row keeps the payment intent).
    /// If Stripe cannot be reached the exception answers 500 and Stripe delivers the event again.
    /// </summary>
    private async Task<PaymentRow?> FindPaymentAsync(BillingTransaction tx, string paymentIntentId, CancellationToken ct) =>
        await accounts.FindPaymentForUpdateAsync(tx, paymentIntentId, ct)
        ?? (await stripe.FindInvoiceOfPaymentIntentAsync(paymentIntentId, ct) is { } invoiceId
            ? await accounts.FindInvoicePaymentForUpdateAsync(tx, invoiceId, paymentIntentId, ct)
            : null);

    /// <summary>
    /// A refund or dispute for an account deleted since the payment: its balance was forfeited with it and there is no
    /// account left to owe anything, so nothing is taken back. The payment row, kept for accounting, is the account's
    /// tombstone: it records how much of the credit Stripe has returned, and the event answers 200 (no retries for days).
    /// </summary>
    private static async Task<string> DeletedAccountAsync(BillingTransaction tx, PaymentRow payment, long targetMicros, string what, CancellationToken ct)
    {
        await BillingAccounts.RecordOnDeletedAccountAsync(tx, payment, targetMicros, ct);
        return $"{what}: account deleted; recorded against payment {payment.Id} ({Money.Usd(targetMicros)} USD of its credit returned), nothing taken back";
    }

    /// <summary>credited × part ÷ whole, in 128-bit arithmetic (no overflow), rounded down.</summary>
    internal static long Share(long credited, long part, long whole) => whole <= 0 ? 0 : (long)((Int128)credited * part / whole);

    private PlanOption? PlanOf(Invoice invoice) =>
        billing.Value.FindPlan(Meta(invoice.Parent?.SubscriptionDetails?.Metadata, "plan_id"))
        ?? PlanByPrice(invoice.Lines?.Data?.Select(l => l.Pricing?.PriceDetails?.PriceId));

    private PlanOption? PlanOf(Subscription sub) =>
        PlanByPrice(sub.Items?.Data?.Select(i => i.Price?.Id)) ?? billing.Value.FindPlan(Meta(sub.Metadata, "plan_id"));

    private PlanOption? PlanByPrice(IEnumerable<string?>? priceIds) =>
        priceIds?.Where(id => !string.IsNullOrEmpty(id))
            .Select(id => billing.Value.Plans.FirstOrDefault(p => !string.IsNullOrEmpty(p.StripePriceId) && p.StripePriceId == id))
            .FirstOrDefault(p => p is not null);

    internal static string? Meta(Dictionary<string, string>? metadata, string key) => metadata?.GetValueOrDefault(key);

    /// <summary>
    /// The event's object as the type its event type promises. Stripe always sends the fields below; an object without
    /// them is not what Stripe sends (a JsonException: recorded as unreadable, nothing changed) rather than zeros and
    /// nulls reaching the ledger.
    /// </summary>
    private static T Read<T>(Event e, JsonElement raw) where T : class, IHasId
    {
        if (e.Data.Object is not T value || string.IsNullOrEmpty(value.Id))
            throw new JsonException($"{e.Type} does not carry a {typeof(T).Name} with an id");
        foreach (var field in RequiredFields(value))
            if (!raw.TryGetProperty(field, out _))
                throw new JsonException($"{typeof(T).Name} {value.Id} lacks {field}");
        return value;
    }

    private static string[] RequiredFields(object value) => value switch
    {
        Session => ["mode", "payment_status", "amount_total", "currency", "customer", "metadata"],
        Invoice => ["customer", "amount_paid", "currency", "billing_reason", "lines", "parent"],
        Subscription => ["customer", "status", "cancel_at_period_end", "items", "metadata"],
        Charge => ["amount", "amount_refunded", "payment_intent"],
        Dispute => ["amount", "charge", "payment_intent"],
        _ => [],
    };
}
