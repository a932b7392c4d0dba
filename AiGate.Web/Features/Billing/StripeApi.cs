using System.Net;
using Microsoft.Extensions.Options;
using Stripe;
using Stripe.Checkout;

namespace AiGate.Web.Features.Billing;

/// <summary>What a Checkout Session is for: a credit pack, a custom amount, or a plan's subscription.</summary>
public sealed record CheckoutRequest(Guid UserId, string CustomerId, string Mode, string Description, long? AmountCents, string? PriceId, string Kind, string? ItemId, string SuccessUrl, string CancelUrl);

/// <summary>
/// The Stripe calls AiGate makes, in Stripe.net's types. <see cref="StripeApi"/> calls Stripe; <see cref="LocalStripe"/>
/// is the Development stand-in used when no secret key is set. Failures are a <see cref="StripeException"/>, also when
/// Stripe could not be reached (then its status is 0 and its error type <c>api_connection_error</c>).
/// </summary>
public interface IStripeApi
{
    Task<Customer> CreateCustomerAsync(Guid userId, string email, CancellationToken ct);
    Task<Session> CreateCheckoutSessionAsync(CheckoutRequest request, CancellationToken ct);
    Task<Session> GetCheckoutSessionAsync(string id, CancellationToken ct);
    Task<Stripe.BillingPortal.Session> CreatePortalSessionAsync(string customerId, string returnUrl, CancellationToken ct);
    Task<Charge> GetChargeAsync(string id, CancellationToken ct);
    Task<PaymentIntent> GetPaymentIntentAsync(string id, CancellationToken ct);
    /// <summary>The invoice a payment intent paid, if any (an invoice names its payment intent only in its payments list since API version 2025-03-31).</summary>
    Task<string?> FindInvoiceOfPaymentIntentAsync(string paymentIntentId, CancellationToken ct);
}

/// <summary>
/// AiGate's calls through Stripe.net's <see cref="StripeClient"/>, which pins <see cref="StripeConfiguration.ApiVersion"/>
/// (<c>Stripe-Version</c>), form-encodes with Stripe's bracket notation, retries network failures, 409 and 5xx (and
/// whatever <c>Stripe-Should-Retry</c> allows) with back-off, reusing the <c>Idempotency-Key</c> we give each POST.
/// </summary>
public sealed class StripeApi(StripeClient client) : IStripeApi
{
    public const string HttpClientName = "stripe";

    /// <summary>
    /// Stripe.net's client over our HttpClient (IHttpClientFactory's handler and its lifetime). Stripe.net calls it once per
    /// attempt, so its timeout is the per-attempt one. No telemetry header: nothing about us leaves unasked. A fake
    /// (<see cref="StripeOptions.IsFake"/>: tests, staging) stands in for every Stripe host; Stripe itself keeps Stripe.net's defaults.
    /// </summary>
    public static StripeClient CreateClient(StripeOptions o, HttpClient http)
    {
        http.Timeout = TimeSpan.FromSeconds(o.TimeoutSeconds);
        var fake = o.IsFake ? o.ApiBase.ToString().TrimEnd('/') : null;
        return new StripeClient(o.SecretKey, httpClient: new SystemNetHttpClient(http, o.MaxRetries, enableTelemetry: false),
            apiBase: fake, connectBase: fake, filesBase: fake, meterEventsBase: fake);
    }

    public Task<Customer> CreateCustomerAsync(Guid userId, string email, CancellationToken ct) =>
        // Keyed by the user, so two racing first checkouts get the same customer back from Stripe (within 24 h).
        CallAsync(() => client.V1.Customers.CreateAsync(new CustomerCreateOptions
        {
            Email = email,
            Metadata = new() { ["user_id"] = userId.ToString() },
        }, Key($"customer-{userId}"), ct), ct);

    public Task<Session> CreateCheckoutSessionAsync(CheckoutRequest r, CancellationToken ct)
    {
        var item = new SessionLineItemOptions { Quantity = 1 };
        if (r.PriceId is not null)
        {
            item.Price = r.PriceId;
        }
        else
        {
            item.PriceData = new SessionLineItemPriceDataOptions
            {
                Currency = "usd",
                UnitAmount = r.AmountCents!.Value,
                ProductData = new SessionLineItemPriceDataProductDataOptions { Name = r.Description },
                Recurring = r.Mode == "subscription" ? new SessionLineItemPriceDataRecurringOptions { Interval = "month" } : null,
            };
        }
        var metadata = new Dictionary<string, string> { ["user_id"] = r.UserId.ToString(), ["kind"] = r.Kind };
        if (r.ItemId is not null) metadata["item_id"] = r.ItemId;
        var options = new SessionCreateOptions
        {
            Mode = r.Mode,
            Customer = r.CustomerId,
            ClientReferenceId = r.UserId.ToString(),
            SuccessUrl = r.SuccessUrl,
            CancelUrl = r.CancelUrl,
            Metadata = metadata,
            LineItems = [item],
        };
        if (r.Mode == "subscription")
            // Invoices of the subscription carry these in parent.subscription_details.metadata.
            options.SubscriptionData = new SessionSubscriptionDataOptions { Metadata = new() { ["user_id"] = r.UserId.ToString(), ["plan_id"] = r.ItemId ?? "" } };
        else
            options.PaymentIntentData = new SessionPaymentIntentDataOptions { Metadata = new() { ["user_id"] = r.UserId.ToString() } };
        // A new key per click: a retry of this call reuses it, a second click is a second session (as before).
        return CallAsync(() => client.V1.Checkout.Sessions.CreateAsync(options, Key(Guid.NewGuid().ToString()), ct), ct);
    }

    public Task<Session> GetCheckoutSessionAsync(string id, CancellationToken ct) =>
        CallAsync(() => client.V1.Checkout.Sessions.GetAsync(id, null, null, ct), ct);

    public Task<Stripe.BillingPortal.Session> CreatePortalSessionAsync(string customerId, string returnUrl, CancellationToken ct) =>
        CallAsync(() => client.V1.BillingPortal.Sessions.CreateAsync(
            new Stripe.BillingPortal.SessionCreateOptions { Customer = customerId, ReturnUrl = returnUrl }, Key(Guid.NewGuid().ToString()), ct), ct);

    public Task<Charge> GetChargeAsync(string id, CancellationToken ct) => CallAsync(() => client.V1.Charges.GetAsync(id, null, null, ct), ct);

    public Task<PaymentIntent> GetPaymentIntentAsync(string id, CancellationToken ct) => CallAsync(() => client.V1.PaymentIntents.GetAsync(id, null, null, ct), ct);

    public async Task<string?> FindInvoiceOfPaymentIntentAsync(string paymentIntentId, CancellationToken ct)
    {
        var payments = await CallAsync(() => client.V1.InvoicePayments.ListAsync(new InvoicePaymentListOptions
        {
            Payment = new InvoicePaymentPaymentOptions { Type = "payment_intent", PaymentIntent = paymentIntentId },
            Limit = 1,
        }, null, ct), ct);
        return payments.Data.FirstOrDefault()?.InvoiceId;
    }

    private static RequestOptions Key(string idempotencyKey) => new() { IdempotencyKey = idempotencyKey };

    /// <summary>
    /// Stripe.net rethrows a network failure or timeout (after its retries) as it came; callers handle one exception
    /// type, so those become a <see cref="StripeException"/> too (status 0, <c>api_connection_error</c>).
    /// </summary>
    private static async Task<T> CallAsync<T>(Func<Task<T>> call, CancellationToken ct)
    {
        try
        {
            return await call();
        }
        catch (HttpRequestException ex)
        {
            throw StripeErrors.Connection("could not reach Stripe", ex);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw StripeErrors.Connection("Stripe did not answer in time", ex);
        }
    }
}

/// <summary>Building and explaining <see cref="StripeException"/>s.</summary>
public static class StripeErrors
{
    public static StripeException Connection(string message, Exception inner) =>
        new(message, inner) { StripeError = new StripeError { Type = "api_connection_error", Message = message } };

    /// <summary>An error as Stripe's API would answer it (the local TEST stand-in throws these).</summary>
    public static StripeException Api(HttpStatusCode status, string type, string? code, string message, string? param = null) =>
        new(status, new StripeError { Type = type, Code = code, Message = message, Param = param }, message);

    /// <summary>Worth trying again later: rate limited, a lock held by another request (409), Stripe's side, or the network.</summary>
    public static bool IsTransient(this StripeException ex) =>
        ex.HttpStatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.Conflict || (int)ex.HttpStatusCode is >= 500 or 0;

    /// <summary>
    /// What the billing page tells the user. Card errors carry a message Stripe writes for the customer (its docs say
    /// to show it); other refusals are our configuration's problem, named by Stripe's code only (their messages can
    /// name parameters the user never saw); transient failures say to try again. <paramref name="nothingHappened"/>
    /// is "Nothing was charged." or "Nothing was changed.".
    /// </summary>
    public static string Describe(StripeException ex, string nothingHappened)
    {
        var e = ex.StripeError;
        if (e?.Type == "card_error")
            return $"The payment was declined: {e.Message ?? "your card was declined"} {nothingHappened}";
        if (ex.IsTransient())
            return $"The payment provider could not be reached. {nothingHappened} Please try again in a minute.";
        return $"The payment provider refused the request ({e?.Code ?? e?.Type ?? ((int)ex.HttpStatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture)}). {nothingHappened} Please try again later or contact support.";
    }
}
