using System.Text.Json;
using System.Text.Json.Serialization;

namespace AiGate.Web.Features.Billing;

// The parts of Stripe's objects (API version StripeOptions.ApiVersion) that AiGate reads. Names are
// Stripe's, snake_case on the wire (https://docs.stripe.com/api). Unknown fields are ignored.

public static class StripeJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // Stripe always sends every field of an object (null when empty). One that is missing, or null where we
        // declared it non-nullable, makes the object unreadable (a JsonException: recorded, nothing changed)
        // instead of a null reaching the database.
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    /// <summary>For error bodies, whose fields vary by error type (decline_code only for card errors…).</summary>
    public static readonly JsonSerializerOptions Lenient = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}

/// <summary>https://docs.stripe.com/api/events/object</summary>
public sealed record StripeEvent(string Id, string Type, long Created, StripeEventData Data);

public sealed record StripeEventData(JsonElement Object);

/// <summary>https://docs.stripe.com/api/customers/object</summary>
public sealed record StripeCustomer(string Id, Dictionary<string, string>? Metadata);

/// <summary>https://docs.stripe.com/api/checkout/sessions/object</summary>
public sealed record StripeCheckoutSession(string Id, string Mode, string? Status, string PaymentStatus, long? AmountTotal, string? Currency, string? Customer, string? ClientReferenceId, string? PaymentIntent, string? Subscription, Dictionary<string, string>? Metadata, string? Url, long Created);

/// <summary>https://docs.stripe.com/api/invoices/object</summary>
/// <remarks><c>total_excluding_tax</c> (null when Stripe computed no total) is optional here: older fixtures and the local TEST invoices leave it out.</remarks>
public sealed record StripeInvoice(string Id, string? Customer, string? Subscription, long AmountPaid, string Currency, string? PaymentIntent, string? HostedInvoiceUrl, string? BillingReason, StripeList<StripeInvoiceLine>? Lines, StripeSubscriptionDetails? SubscriptionDetails, long AttemptCount,
    long? TotalExcludingTax = null);

public sealed record StripeSubscriptionDetails(Dictionary<string, string>? Metadata);

public sealed record StripeInvoiceLine(string Id, StripePeriod? Period, StripePrice? Price, Dictionary<string, string>? Metadata);

public sealed record StripePeriod(long Start, long End);

public sealed record StripePrice(string Id);

public sealed record StripeList<T>(List<T> Data);

/// <summary>https://docs.stripe.com/api/subscriptions/object</summary>
public sealed record StripeSubscription(string Id, string Customer, string Status, bool CancelAtPeriodEnd, long? CurrentPeriodEnd, Dictionary<string, string>? Metadata, StripeList<StripeSubscriptionItem>? Items);

public sealed record StripeSubscriptionItem(string Id, StripePrice? Price);

/// <summary>https://docs.stripe.com/api/charges/object</summary>
public sealed record StripeCharge(string Id, long Amount, long AmountRefunded, string Currency, string? Customer, string? PaymentIntent, string? ReceiptUrl);

/// <summary>https://docs.stripe.com/api/payment_intents/object (<c>latest_charge</c> is the charge with the receipt).</summary>
public sealed record StripePaymentIntent(string Id, string? LatestCharge);

/// <summary>https://docs.stripe.com/api/disputes/object</summary>
public sealed record StripeDispute(string Id, long Amount, string Charge, string? PaymentIntent, string? Reason);

/// <summary>https://docs.stripe.com/api/customer_portal/sessions/object</summary>
public sealed record StripePortalSession(string Id, string Customer, string Url, string? ReturnUrl);

/// <summary>Stripe's error body (https://docs.stripe.com/api/errors): <c>{"error":{"type","code","message","param",…}}</c>.</summary>
public sealed record StripeErrorBody(StripeErrorDetail? Error);

public sealed record StripeErrorDetail(string? Type, string? Code, string? DeclineCode, string? Message, string? Param);

/// <summary>What a call to Stripe failed with: its HTTP status and Stripe's error type and code (never the key).</summary>
public sealed class StripeException(int status, string? type, string? code, string message, string? requestId)
    : Exception($"Stripe answered {status} {type ?? "error"}{(code is null ? "" : $" ({code})")}: {message}")
{
    public int Status { get; } = status;
    public string? Type { get; } = type;
    public string? Code { get; } = code;
    public string? RequestId { get; } = requestId;
    /// <summary>Worth trying again later (rate limited, Stripe's side, network).</summary>
    public bool Transient => Status is 429 or >= 500 or 0;
}

/// <summary>What a Checkout Session is for: a credit pack, a custom amount, or a plan's subscription.</summary>
public sealed record CheckoutRequest(Guid UserId, string CustomerId, string Mode, string Description, long? AmountCents, string? PriceId, string Kind, string? ItemId, string SuccessUrl, string CancelUrl);

/// <summary>
/// The Stripe calls AiGate makes. <see cref="StripeClient"/> speaks Stripe's REST API; <see cref="LocalStripe"/>
/// is the Development stand-in used when no secret key is set.
/// </summary>
public interface IStripeApi
{
    Task<StripeCustomer> CreateCustomerAsync(Guid userId, string email, CancellationToken ct);
    Task<StripeCheckoutSession> CreateCheckoutSessionAsync(CheckoutRequest request, CancellationToken ct);
    Task<StripeCheckoutSession> GetCheckoutSessionAsync(string id, CancellationToken ct);
    Task<StripePortalSession> CreatePortalSessionAsync(string customerId, string returnUrl, CancellationToken ct);
    Task<StripeCharge> GetChargeAsync(string id, CancellationToken ct);
    Task<StripePaymentIntent> GetPaymentIntentAsync(string id, CancellationToken ct);
}
