using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// The Development stand-in for Stripe when no <c>Stripe__SecretKey</c> is set (Production refuses to
/// start this way). It keeps customers, Checkout Sessions and subscriptions in memory and answers the
/// same calls as <see cref="StripeClient"/> with the same objects, so the billing page, the success
/// page's retrieval and fulfilment run unchanged. Sessions are paid on the local TEST checkout page,
/// which has <see cref="LocalCheckout"/> post Stripe's events, signed, to our own webhook endpoint.
/// State is lost on restart, as a test mode's may be.
/// </summary>
public sealed class LocalStripe(IOptions<BillingOptions> billing, TimeProvider clock) : IStripeApi
{
    public const string CheckoutPath = "/billing/test-checkout";
    public const string PortalPath = "/billing/test-portal";
    public const string ReceiptPath = "/billing/test-receipt";

    private readonly ConcurrentDictionary<string, StripeCustomer> _customers = new();
    private readonly ConcurrentDictionary<string, StripeCheckoutSession> _sessions = new();
    private readonly ConcurrentDictionary<string, StripeSubscription> _subscriptions = new();

    public Task<StripeCustomer> CreateCustomerAsync(Guid userId, string email, CancellationToken ct)
    {
        var customer = new StripeCustomer(NewId("cus"), new() { ["user_id"] = userId.ToString() });
        _customers[customer.Id] = customer;
        return Task.FromResult(customer);
    }

    public Task<StripeCheckoutSession> CreateCheckoutSessionAsync(CheckoutRequest r, CancellationToken ct)
    {
        var amount = r.AmountCents ?? billing.Value.FindPlan(r.ItemId)?.MonthlyPriceCents
            ?? throw new StripeException(400, "invalid_request_error", "resource_missing", "No such price", null);
        var id = NewId("cs_test");
        var metadata = new Dictionary<string, string> { ["user_id"] = r.UserId.ToString(), ["kind"] = r.Kind };
        if (r.ItemId is not null) metadata["item_id"] = r.ItemId;
        var session = new StripeCheckoutSession(id, r.Mode, "open", "unpaid", amount, "usd", r.CustomerId, r.UserId.ToString(), null, null,
            metadata, $"{CheckoutPath}?session={id}", clock.GetUtcNow().ToUnixTimeSeconds());
        _sessions[id] = session;
        _returnUrls[id] = (r.SuccessUrl.Replace("{CHECKOUT_SESSION_ID}", id, StringComparison.Ordinal), r.CancelUrl);
        return Task.FromResult(session);
    }

    private readonly ConcurrentDictionary<string, (string Success, string Cancel)> _returnUrls = new();

    public Task<StripeCheckoutSession> GetCheckoutSessionAsync(string id, CancellationToken ct) =>
        _sessions.TryGetValue(id, out var s) ? Task.FromResult(s) : throw Missing("checkout.session", id);

    public Task<StripePortalSession> CreatePortalSessionAsync(string customerId, string returnUrl, CancellationToken ct) =>
        _customers.ContainsKey(customerId)
            ? Task.FromResult(new StripePortalSession(NewId("bps"), customerId, PortalPath, returnUrl))
            : throw Missing("customer", customerId);

    public Task<StripeCharge> GetChargeAsync(string id, CancellationToken ct) =>
        _charges.TryGetValue(id, out var c) ? Task.FromResult(c) : throw Missing("charge", id);

    public Task<StripePaymentIntent> GetPaymentIntentAsync(string id, CancellationToken ct)
    {
        var charge = _charges.Values.FirstOrDefault(c => c.PaymentIntent == id) ?? throw Missing("payment_intent", id);
        return Task.FromResult(new StripePaymentIntent(id, charge.Id));
    }

    private readonly ConcurrentDictionary<string, StripeCharge> _charges = new();

    /// <summary>The AiGate user a TEST customer was created for.</summary>
    public Guid? CustomerOf(string? customerId) =>
        customerId is not null && _customers.TryGetValue(customerId, out var c) && Guid.TryParse(StripeEventHandlers.Meta(c.Metadata, "user_id"), out var id) ? id : null;

    public StripeCheckoutSession? FindSession(string id) => _sessions.GetValueOrDefault(id);

    public (string Success, string Cancel)? ReturnUrls(string id) => _returnUrls.TryGetValue(id, out var urls) ? urls : null;

    public StripeSubscription? FindSubscription(string? id) => id is null ? null : _subscriptions.GetValueOrDefault(id);

    /// <summary>Marks the session paid (as Stripe does when the card is charged) and returns the events Stripe would send.</summary>
    public IReadOnlyList<object> Pay(string sessionId)
    {
        var session = _sessions[sessionId];
        var now = clock.GetUtcNow();
        if (session.Mode == "payment")
        {
            var paid = session with { Status = "complete", PaymentStatus = "paid", PaymentIntent = NewId("pi") };
            _sessions[sessionId] = paid;
            var chargeId = NewId("ch");
            _charges[chargeId] = new StripeCharge(chargeId, paid.AmountTotal ?? 0, 0, "usd", paid.Customer, paid.PaymentIntent,
                $"{ReceiptPath}?charge={chargeId}");
            return [Event("checkout.session.completed", paid, now)];
        }

        var plan = billing.Value.FindPlan(StripeEventHandlers.Meta(session.Metadata, "item_id"))!;
        var subscription = new StripeSubscription(NewId("sub"), session.Customer!, "active", false, now.AddMonths(1).ToUnixTimeSeconds(),
            new() { ["user_id"] = session.ClientReferenceId!, ["plan_id"] = plan.Id }, new([new(NewId("si"), new(PriceOf(plan)))]));
        _subscriptions[subscription.Id] = subscription;
        var complete = session with { Status = "complete", PaymentStatus = "paid", Subscription = subscription.Id };
        _sessions[sessionId] = complete;
        return [Event("checkout.session.completed", complete, now), Event("invoice.paid", Invoice(subscription, plan, "subscription_create", now), now)];
    }

    /// <summary>The portal's plan change: the subscription moves to the new plan and is invoiced now (proration "always_invoice").</summary>
    public IReadOnlyList<object> ChangePlan(string subscriptionId, PlanOption plan)
    {
        var now = clock.GetUtcNow();
        var changed = _subscriptions[subscriptionId] with
        {
            Status = "active", CancelAtPeriodEnd = false, CurrentPeriodEnd = now.AddMonths(1).ToUnixTimeSeconds(),
            Metadata = new(_subscriptions[subscriptionId].Metadata!) { ["plan_id"] = plan.Id },
            Items = new([new(NewId("si"), new(PriceOf(plan)))]),
        };
        _subscriptions[subscriptionId] = changed;
        return [Event("customer.subscription.updated", changed, now), Event("invoice.paid", Invoice(changed, plan, "subscription_update", now), now)];
    }

    /// <summary>The portal's cancellation (immediate, as the portal's "cancel immediately" setting).</summary>
    public IReadOnlyList<object> Cancel(string subscriptionId)
    {
        var canceled = _subscriptions[subscriptionId] with { Status = "canceled" };
        _subscriptions[subscriptionId] = canceled;
        return [Event("customer.subscription.deleted", canceled, clock.GetUtcNow())];
    }

    private static string PriceOf(PlanOption plan) => string.IsNullOrEmpty(plan.StripePriceId) ? $"price_local_{plan.Id}" : plan.StripePriceId;

    private static object Invoice(StripeSubscription sub, PlanOption plan, string reason, DateTimeOffset now) => new
    {
        id = NewId("in"), @object = "invoice", customer = sub.Customer, subscription = sub.Id, status = "paid",
        amount_paid = plan.MonthlyPriceCents, amount_due = plan.MonthlyPriceCents, currency = "usd", payment_intent = NewId("pi"), charge = NewId("ch"),
        hosted_invoice_url = (string?)null, billing_reason = reason, attempt_count = 1, next_payment_attempt = (long?)null, created = now.ToUnixTimeSeconds(),
        subscription_details = new { metadata = sub.Metadata },
        lines = new
        {
            @object = "list", has_more = false,
            data = new[] { new { id = NewId("il"), period = new { start = now.ToUnixTimeSeconds(), end = now.AddMonths(1).ToUnixTimeSeconds() }, price = new { id = PriceOf(plan) }, metadata = new Dictionary<string, string>() } },
        },
    };

    private static object Event(string type, object data, DateTimeOffset now) => new
    {
        id = NewId("evt"), @object = "event", api_version = StripeOptions.ApiVersion, created = now.ToUnixTimeSeconds(), livemode = false, type,
        data = new { @object = data is StripeCheckoutSession or StripeSubscription ? JsonSerializer.SerializeToElement(data, data.GetType(), StripeJson.Options) : data },
    };

    private static string NewId(string prefix) => $"{prefix}_local_{Guid.NewGuid():N}";

    private static StripeException Missing(string kind, string id) =>
        new(404, "invalid_request_error", "resource_missing", $"No such {kind}: '{id}'", null);
}
