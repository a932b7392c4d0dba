using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AiGate.Web.Features.Billing;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>
/// The app in local billing mode (no Stripe key): the TEST checkout posts its signed events to the app's own
/// webhook through the in-process server. Helpers build Stripe events and deliver them signed, as Stripe does.
/// </summary>
public class BillingApp : AccountsApp
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services =>
            services.AddHttpClient(LocalCheckout.HttpClientName).ConfigurePrimaryHttpMessageHandler(() => Server.CreateHandler()));
    }

    public string WebhookSecret => Services.GetRequiredService<StripeWebhookSecret>().Value;

    /// <summary>POSTs an event to /webhooks/stripe signed with the endpoint secret (or the given header).</summary>
    public async Task<HttpResponseMessage> DeliverAsync(object stripeEvent, string? signature = null, HttpClient? client = null)
    {
        var payload = stripeEvent as byte[] ?? JsonSerializer.SerializeToUtf8Bytes(stripeEvent);
        var content = new ByteArrayContent(payload);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe") { Content = content };
        request.Headers.Add("Stripe-Signature", signature ?? FakeStripe.Sign(payload, WebhookSecret, DateTimeOffset.UtcNow));
        return await (client ?? CreateClient()).SendAsync(request);
    }

    /// <summary>Gives the user a Stripe customer id, as the billing page does before the first checkout.</summary>
    public async Task<string> LinkCustomerAsync(Guid userId)
    {
        var customer = $"cus_{Guid.NewGuid():N}"[..18];
        await Database.ExecuteAsync($"""
            insert into billing_accounts (user_id, stripe_customer_id, plan_id, cancel_at_period_end, state_as_of, dunning_step, updated_at)
            values ('{userId}', '{customer}', 'free', false, 0, 0, now())
            """);
        return customer;
    }

    public Task<long> BalanceAsync(Guid userId) => Database.ScalarAsync<long>($"select coalesce((select balance_micros from credit_accounts where user_id = '{userId}'), 0)");

    public Task<long> LedgerSumAsync(Guid userId) => Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'");

    /// <summary>An event as Stripe delivers it to an endpoint created with the pinned API version (or <paramref name="apiVersion"/>).</summary>
    public static object Event(string type, object data, long? created = null, string? id = null, string? apiVersion = null) => new
    {
        id = id ?? $"evt_{Guid.NewGuid():N}", @object = "event", api_version = apiVersion ?? FakeStripe.ApiVersion,
        created = created ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(), livemode = false, pending_webhooks = 1,
        request = new { id = (string?)null, idempotency_key = (string?)null }, type, data = new { @object = data },
    };

    public static object PaidSession(Guid userId, string customer, long amountCents, string kind = "custom", string? item = null, string? sessionId = null,
        string? paymentIntent = null, string paymentStatus = "paid") => new
    {
        id = sessionId ?? $"cs_test_{Guid.NewGuid():N}", @object = "checkout.session", mode = "payment", status = "complete", payment_status = paymentStatus,
        amount_total = amountCents, currency = "usd", customer, client_reference_id = userId.ToString(),
        payment_intent = paymentIntent ?? $"pi_{Guid.NewGuid():N}",
        metadata = item is null ? new Dictionary<string, string> { ["kind"] = kind, ["user_id"] = userId.ToString() }
            : new Dictionary<string, string> { ["kind"] = kind, ["item_id"] = item, ["user_id"] = userId.ToString() },
        subscription = (string?)null, url = (string?)null, created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), livemode = false,
    };

    /// <summary>
    /// A subscription invoice in the pinned API version's shape (2025-03-31 and later): the subscription and its metadata under
    /// <c>parent.subscription_details</c>, each line's price under <c>pricing.price_details</c>, no <c>payment_intent</c> or <c>charge</c>.
    /// </summary>
    public static object Invoice(string customer, string subscription, string planId, long amountCents, string? id = null, long? periodEnd = null,
        string billingReason = "subscription_cycle") => new
    {
        id = id ?? $"in_{Guid.NewGuid():N}", @object = "invoice", customer, status = "paid", amount_paid = amountCents, amount_due = amountCents,
        amount_remaining = 0, total_excluding_tax = (long?)null, currency = "usd", hosted_invoice_url = "https://invoice.stripe.com/i/acct_1/test",
        billing_reason = billingReason, attempt_count = 1, next_payment_attempt = (long?)null, created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), livemode = false,
        parent = new
        {
            type = "subscription_details", quote_details = (object?)null,
            subscription_details = new { subscription, metadata = new Dictionary<string, string> { ["plan_id"] = planId } },
        },
        lines = new
        {
            @object = "list", has_more = false, url = "/v1/invoices/in_x/lines",
            data = new[]
            {
                new
                {
                    id = "il_1", @object = "line_item", amount = amountCents, currency = "usd",
                    period = new { start = 1, end = periodEnd ?? DateTimeOffset.UtcNow.AddMonths(1).ToUnixTimeSeconds() },
                    pricing = new { type = "price_details", price_details = new { price = $"price_{planId}", product = $"prod_{planId}" }, unit_amount_decimal = "1000" },
                    metadata = new Dictionary<string, string>(),
                },
            },
        },
    };

    /// <summary>A subscription in the pinned API version's shape: the billing period is on each item.</summary>
    public static object Subscription(string customer, string id, string status, string planId, long periodEnd, bool cancelAtPeriodEnd = false) => new
    {
        id, @object = "subscription", customer, status, cancel_at_period_end = cancelAtPeriodEnd, created = periodEnd - 2_592_000, livemode = false,
        metadata = new Dictionary<string, string> { ["plan_id"] = planId },
        items = new
        {
            @object = "list", has_more = false,
            data = new[]
            {
                new
                {
                    id = "si_1", @object = "subscription_item", price = new { id = $"price_{planId}", @object = "price" }, quantity = 1,
                    current_period_start = periodEnd - 2_592_000, current_period_end = periodEnd, metadata = new Dictionary<string, string>(),
                },
            },
        },
    };

    public static object Charge(string paymentIntent, long amount, long refunded) => new
    {
        id = $"ch_{Guid.NewGuid():N}", @object = "charge", amount, amount_refunded = refunded, currency = "usd", payment_intent = paymentIntent,
        refunded = refunded == amount, receipt_url = "https://pay.stripe.com/receipts/test", customer = (string?)null, paid = true, status = "succeeded",
        created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), livemode = false,
    };
}
