using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Stripe;
using Stripe.Checkout;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// The Development stand-in for Stripe when no <c>Stripe__SecretKey</c> is set (Production refuses to
/// start this way). It keeps customers, Checkout Sessions, subscriptions and charges in memory as the JSON
/// Stripe would send (API version <see cref="StripeOptions.ApiVersion"/>) and answers the same calls as
/// <see cref="StripeApi"/> with that JSON read by Stripe.net, so the billing page, the success page's retrieval
/// and fulfilment run unchanged. Sessions are paid on the local TEST checkout page, which has
/// <see cref="LocalCheckout"/> post Stripe's events, signed, to our own webhook endpoint.
/// State is lost on restart, as a test mode's may be.
/// </summary>
public sealed class LocalStripe(IOptions<BillingOptions> billing, TimeProvider clock) : IStripeApi
{
    public const string CheckoutPath = "/billing/test-checkout";
    public const string PortalPath = "/billing/test-portal";
    public const string ReceiptPath = "/billing/test-receipt";

    private readonly ConcurrentDictionary<string, JsonObject> _objects = new();
    private readonly ConcurrentDictionary<string, (string Success, string Cancel)> _returnUrls = new();
    private readonly Lock _lock = new();

    public Task<Customer> CreateCustomerAsync(Guid userId, string email, CancellationToken ct)
    {
        var customer = New("customer", "cus");
        customer["email"] = email;
        customer["metadata"] = new JsonObject { ["user_id"] = userId.ToString() };
        return Task.FromResult(Read<Customer>(customer));
    }

    public Task<Session> CreateCheckoutSessionAsync(CheckoutRequest r, CancellationToken ct)
    {
        var amount = r.AmountCents ?? billing.Value.FindPlan(r.ItemId)?.MonthlyPriceCents
            ?? throw StripeErrors.Api(HttpStatusCode.BadRequest, "invalid_request_error", "resource_missing", $"No such price: '{r.PriceId}'", "line_items[0][price]");
        var session = New("checkout.session", "cs_test");
        var id = (string)session["id"]!;
        var metadata = new JsonObject { ["user_id"] = r.UserId.ToString(), ["kind"] = r.Kind };
        if (r.ItemId is not null) metadata["item_id"] = r.ItemId;
        session["mode"] = r.Mode;
        session["status"] = "open";
        session["payment_status"] = "unpaid";
        session["amount_total"] = amount;
        session["currency"] = "usd";
        session["customer"] = r.CustomerId;
        session["client_reference_id"] = r.UserId.ToString();
        session["payment_intent"] = null;
        session["subscription"] = null;
        session["metadata"] = metadata;
        session["success_url"] = r.SuccessUrl;
        session["cancel_url"] = r.CancelUrl;
        session["url"] = $"{CheckoutPath}?session={id}";
        _returnUrls[id] = (r.SuccessUrl.Replace("{CHECKOUT_SESSION_ID}", id, StringComparison.Ordinal), r.CancelUrl);
        return Task.FromResult(Read<Session>(session));
    }

    public Task<Session> GetCheckoutSessionAsync(string id, CancellationToken ct) => Task.FromResult(Get<Session>("checkout.session", id));

    public Task<Stripe.BillingPortal.Session> CreatePortalSessionAsync(string customerId, string returnUrl, CancellationToken ct)
    {
        Get<Customer>("customer", customerId);
        var portal = New("billing_portal.session", "bps");
        portal["customer"] = customerId;
        portal["return_url"] = returnUrl;
        portal["url"] = PortalPath;
        return Task.FromResult(Read<Stripe.BillingPortal.Session>(portal));
    }

    public Task<Charge> GetChargeAsync(string id, CancellationToken ct) => Task.FromResult(Get<Charge>("charge", id));

    public Task<PaymentIntent> GetPaymentIntentAsync(string id, CancellationToken ct) => Task.FromResult(Get<PaymentIntent>("payment_intent", id));

    /// <summary>TEST invoices are never refunded or disputed (there is no TEST refund), so no payment intent leads to one.</summary>
    public Task<string?> FindInvoiceOfPaymentIntentAsync(string paymentIntentId, CancellationToken ct) => Task.FromResult<string?>(null);

    /// <summary>The AiGate user a TEST customer was created for.</summary>
    public Guid? CustomerOf(string? customerId) =>
        customerId is not null && _objects.TryGetValue(customerId, out var c) && Guid.TryParse((string?)c["metadata"]?["user_id"], out var id) ? id : null;

    public Session? FindSession(string id) => Find<Session>("checkout.session", id);

    public (string Success, string Cancel)? ReturnUrls(string id) => _returnUrls.TryGetValue(id, out var urls) ? urls : null;

    public Subscription? FindSubscription(string? id) => id is null ? null : Find<Subscription>("subscription", id);

    /// <summary>Marks the session paid (as Stripe does when the card is charged) and returns the events Stripe would send.</summary>
    public IReadOnlyList<JsonObject> Pay(string sessionId)
    {
        lock (_lock)
        {
            var session = _objects[sessionId];
            var now = clock.GetUtcNow();
            session["status"] = "complete";
            session["payment_status"] = "paid";
            if ((string?)session["mode"] == "payment")
            {
                var intent = New("payment_intent", "pi");
                var charge = New("charge", "ch");
                var amount = (long)session["amount_total"]!;
                charge["amount"] = amount;
                charge["amount_refunded"] = 0;
                charge["currency"] = "usd";
                charge["customer"] = (string?)session["customer"];
                charge["payment_intent"] = (string)intent["id"]!;
                charge["refunded"] = false;
                charge["receipt_url"] = $"{ReceiptPath}?charge={charge["id"]}";
                intent["amount"] = amount;
                intent["currency"] = "usd";
                intent["status"] = "succeeded";
                intent["latest_charge"] = (string)charge["id"]!;
                session["payment_intent"] = (string)intent["id"]!;
                return [Event("checkout.session.completed", session, now)];
            }

            var plan = billing.Value.FindPlan((string?)session["metadata"]?["item_id"])!;
            var subscription = New("subscription", "sub");
            subscription["customer"] = (string?)session["customer"];
            subscription["status"] = "active";
            subscription["cancel_at_period_end"] = false;
            subscription["metadata"] = new JsonObject { ["user_id"] = (string?)session["client_reference_id"], ["plan_id"] = plan.Id };
            subscription["items"] = Items(plan, now);
            session["subscription"] = (string)subscription["id"]!;
            return [Event("checkout.session.completed", session, now), Event("invoice.paid", Invoice(subscription, plan, "subscription_create", now), now)];
        }
    }

    /// <summary>The portal's plan change: the subscription moves to the new plan and is invoiced now (proration "always_invoice").</summary>
    public IReadOnlyList<JsonObject> ChangePlan(string subscriptionId, PlanOption plan)
    {
        lock (_lock)
        {
            var now = clock.GetUtcNow();
            var subscription = _objects[subscriptionId];
            subscription["status"] = "active";
            subscription["cancel_at_period_end"] = false;
            subscription["metadata"]!["plan_id"] = plan.Id;
            subscription["items"] = Items(plan, now);
            return [Event("customer.subscription.updated", subscription, now), Event("invoice.paid", Invoice(subscription, plan, "subscription_update", now), now)];
        }
    }

    /// <summary>The portal's cancellation (immediate, as the portal's "cancel immediately" setting).</summary>
    public IReadOnlyList<JsonObject> Cancel(string subscriptionId)
    {
        lock (_lock)
        {
            var subscription = _objects[subscriptionId];
            subscription["status"] = "canceled";
            return [Event("customer.subscription.deleted", subscription, clock.GetUtcNow())];
        }
    }

    private static string PriceOf(PlanOption plan) => string.IsNullOrEmpty(plan.StripePriceId) ? $"price_local_{plan.Id}" : plan.StripePriceId;

    /// <summary>A subscription's items; since API version 2025-03-31 each carries its own billing period.</summary>
    private static JsonObject Items(PlanOption plan, DateTimeOffset now) => new()
    {
        ["object"] = "list", ["has_more"] = false,
        ["data"] = new JsonArray(new JsonObject
        {
            ["id"] = NewId("si"), ["object"] = "subscription_item", ["quantity"] = 1,
            ["price"] = new JsonObject { ["id"] = PriceOf(plan), ["object"] = "price", ["currency"] = "usd", ["unit_amount"] = plan.MonthlyPriceCents },
            ["current_period_start"] = now.ToUnixTimeSeconds(), ["current_period_end"] = now.AddMonths(1).ToUnixTimeSeconds(),
        }),
    };

    /// <summary>A paid subscription invoice: the subscription and its metadata under <c>parent.subscription_details</c>, the price under each line's <c>pricing</c>.</summary>
    private static JsonObject Invoice(JsonObject subscription, PlanOption plan, string reason, DateTimeOffset now) => new()
    {
        ["id"] = NewId("in"), ["object"] = "invoice", ["customer"] = (string?)subscription["customer"], ["status"] = "paid",
        ["amount_paid"] = plan.MonthlyPriceCents, ["amount_due"] = plan.MonthlyPriceCents, ["total_excluding_tax"] = plan.MonthlyPriceCents, ["currency"] = "usd",
        ["hosted_invoice_url"] = null, ["billing_reason"] = reason, ["attempt_count"] = 1, ["next_payment_attempt"] = null,
        ["created"] = now.ToUnixTimeSeconds(), ["livemode"] = false,
        ["parent"] = new JsonObject
        {
            ["type"] = "subscription_details", ["quote_details"] = null,
            ["subscription_details"] = new JsonObject { ["subscription"] = (string?)subscription["id"], ["metadata"] = subscription["metadata"]!.DeepClone() },
        },
        ["lines"] = new JsonObject
        {
            ["object"] = "list", ["has_more"] = false,
            ["data"] = new JsonArray(new JsonObject
            {
                ["id"] = NewId("il"), ["object"] = "line_item", ["amount"] = plan.MonthlyPriceCents, ["currency"] = "usd",
                ["period"] = new JsonObject { ["start"] = now.ToUnixTimeSeconds(), ["end"] = now.AddMonths(1).ToUnixTimeSeconds() },
                ["pricing"] = new JsonObject
                {
                    ["type"] = "price_details", ["unit_amount_decimal"] = plan.MonthlyPriceCents.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["price_details"] = new JsonObject { ["price"] = PriceOf(plan), ["product"] = $"prod_local_{plan.Id}" },
                },
                ["metadata"] = new JsonObject(),
            }),
        },
    };

    private static JsonObject Event(string type, JsonObject data, DateTimeOffset now) => new()
    {
        ["id"] = NewId("evt"), ["object"] = "event", ["api_version"] = StripeOptions.ApiVersion, ["created"] = now.ToUnixTimeSeconds(), ["livemode"] = false,
        ["pending_webhooks"] = 1, ["request"] = new JsonObject { ["id"] = null, ["idempotency_key"] = null }, ["type"] = type,
        ["data"] = new JsonObject { ["object"] = data.DeepClone() },
    };

    private JsonObject New(string type, string prefix)
    {
        var created = new JsonObject { ["id"] = NewId(prefix), ["object"] = type, ["created"] = clock.GetUtcNow().ToUnixTimeSeconds(), ["livemode"] = false };
        _objects[(string)created["id"]!] = created;
        return created;
    }

    private T? Find<T>(string type, string id) where T : StripeEntity<T>
    {
        lock (_lock)
            return _objects.TryGetValue(id, out var o) && (string?)o["object"] == type ? Read<T>(o) : null;
    }

    private T Get<T>(string type, string id) where T : StripeEntity<T> =>
        Find<T>(type, id) ?? throw StripeErrors.Api(HttpStatusCode.NotFound, "invalid_request_error", "resource_missing", $"No such {type}: '{id}'", "id");

    /// <summary>Read the way Stripe.net reads an API response, so the local objects have exactly the real ones' shape in code.</summary>
    private static T Read<T>(JsonObject wire) where T : StripeEntity<T> => StripeEntity.FromJson<T>(wire.ToJsonString());

    private static string NewId(string prefix) => $"{prefix}_local_{Guid.NewGuid():N}";
}
