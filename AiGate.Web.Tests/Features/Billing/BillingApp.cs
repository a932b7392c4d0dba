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
        request.Headers.Add("Stripe-Signature", signature ?? StripeSignature.Sign(payload, WebhookSecret, DateTimeOffset.UtcNow));
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

    public static object Event(string type, object data, long? created = null, string? id = null) => new
    {
        id = id ?? $"evt_{Guid.NewGuid():N}", @object = "event", api_version = StripeOptions.ApiVersion,
        created = created ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(), livemode = false, type, data = new { @object = data },
    };

    public static object PaidSession(Guid userId, string customer, long amountCents, string kind = "custom", string? item = null, string? sessionId = null,
        string? paymentIntent = null, string paymentStatus = "paid") => new
    {
        id = sessionId ?? $"cs_test_{Guid.NewGuid():N}", @object = "checkout.session", mode = "payment", status = "complete", payment_status = paymentStatus,
        amount_total = amountCents, currency = "usd", customer, client_reference_id = userId.ToString(),
        payment_intent = paymentIntent ?? $"pi_{Guid.NewGuid():N}",
        metadata = item is null ? new Dictionary<string, string> { ["kind"] = kind, ["user_id"] = userId.ToString() }
            : new Dictionary<string, string> { ["kind"] = kind, ["item_id"] = item, ["user_id"] = userId.ToString() },
        subscription = (string?)null, url = (string?)null, created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
    };

    public static object Invoice(string customer, string subscription, string planId, long amountCents, string? id = null, long? periodEnd = null,
        string billingReason = "subscription_cycle") => new
    {
        id = id ?? $"in_{Guid.NewGuid():N}", @object = "invoice", customer, subscription, status = "paid", amount_paid = amountCents, amount_due = amountCents,
        currency = "usd", payment_intent = $"pi_{Guid.NewGuid():N}", charge = $"ch_{Guid.NewGuid():N}", hosted_invoice_url = "https://invoice.stripe.com/i/acct_1/test",
        billing_reason = billingReason, attempt_count = 1, next_payment_attempt = (long?)null, created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        subscription_details = new { metadata = new Dictionary<string, string> { ["plan_id"] = planId } },
        lines = new { @object = "list", has_more = false, data = new[] { new { id = "il_1", period = new { start = 1, end = periodEnd ?? DateTimeOffset.UtcNow.AddMonths(1).ToUnixTimeSeconds() }, price = new { id = $"price_{planId}" }, metadata = new Dictionary<string, string>() } } },
    };

    public static object Subscription(string customer, string id, string status, string planId, long periodEnd, bool cancelAtPeriodEnd = false) => new
    {
        id, @object = "subscription", customer, status, cancel_at_period_end = cancelAtPeriodEnd, current_period_end = periodEnd,
        metadata = new Dictionary<string, string> { ["plan_id"] = planId },
        items = new { @object = "list", data = new[] { new { id = "si_1", price = new { id = $"price_{planId}" }, metadata = new Dictionary<string, string>() } } },
    };

    public static object Charge(string paymentIntent, long amount, long refunded) => new
    {
        id = $"ch_{Guid.NewGuid():N}", @object = "charge", amount, amount_refunded = refunded, currency = "usd", payment_intent = paymentIntent,
        refunded = refunded == amount, receipt_url = "https://pay.stripe.com/receipts/test", customer = (string?)null, invoice = (string?)null,
    };
}
