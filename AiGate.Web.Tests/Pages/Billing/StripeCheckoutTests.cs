using System.Net;
using AiGate.Web.Tests.Features.Billing;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;

namespace AiGate.Web.Tests.Pages.Billing;

/// <summary>The app with a Stripe key, its Stripe.net client pointed at <see cref="FakeStripe"/> (which refuses what Stripe would).</summary>
public sealed class StripeBillingApp : AccountsApp
{
    public const string WebhookSecret = "whsec_test_checkout";
    public FakeStripe Stripe { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Stripe = await FakeStripe.StartAsync();
        await base.InitializeAsync();
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Stripe:SecretKey"] = FakeStripe.SecretKey, ["Stripe:WebhookSecret"] = WebhookSecret, ["Stripe:ApiBase"] = Stripe.BaseUrl.ToString(),
        ["Stripe:MaxRetries"] = "1",
        // Pro names a Stripe Price this Stripe account does not have (a configuration mistake Stripe answers with 400).
        ["Billing:Plans:2:StripePriceId"] = "price_pro_not_in_stripe",
    };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Stripe.DisposeAsync();
    }
}

/// <summary>
/// <c>/billing</c> with Stripe: a purchase goes to the Checkout Session's <c>url</c> with what Stripe expects on the wire, and
/// every refusal Stripe can give is a clear message on the page (200), never a 500, with nothing charged.
/// </summary>
public sealed class StripeCheckoutTests(StripeBillingApp app) : IClassFixture<StripeBillingApp>
{
    [Fact]
    public async Task Buying_a_pack_sends_the_customer_and_the_session_to_Stripe_and_the_browser_to_its_checkout_page()
    {
        var (userId, session) = await app.SignedInAsync("stripe");
        var started = await session.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-25" }, "/billing?handler=Buy");

        Assert.Equal(HttpStatusCode.Redirect, started.StatusCode);
        Assert.StartsWith("https://checkout.stripe.com/c/pay/cs_test_", started.Headers.Location!.OriginalString, StringComparison.Ordinal);
        var create = app.Stripe.Requests.Last(r => r.PathAndQuery == "/v1/checkout/sessions" && r.Body.Contains(userId.ToString(), StringComparison.Ordinal));
        var form = QueryHelpers.ParseQuery(create.Body);
        Assert.Equal("2500", form["line_items[0][price_data][unit_amount]"].ToString());
        Assert.Equal("pack-25", form["metadata[item_id]"].ToString());
        Assert.Equal(userId.ToString(), form["client_reference_id"].ToString());
        Assert.StartsWith("cus_", form["customer"].ToString(), StringComparison.Ordinal);
        Assert.Equal(FakeStripe.ApiVersion, create.Headers["Stripe-Version"]);
        Assert.Equal($"customer-{userId}", app.Stripe.Requests.Single(r => r.PathAndQuery == "/v1/customers" && r.Body.Contains(userId.ToString(), StringComparison.Ordinal)).Headers["Idempotency-Key"]);
    }

    [Fact]
    public async Task A_price_Stripe_does_not_know_is_a_clear_message_not_a_500()
    {
        var (_, session) = await app.SignedInAsync("stripe");
        var answer = await session.SubmitAsync("/billing", new() { ["plan"] = "pro" }, "/billing?handler=Subscribe");

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var page = await answer.Content.ReadAsStringAsync();
        Assert.Contains("data-testid=\"billing-error\"", page, StringComparison.Ordinal);
        Assert.Contains("The payment provider refused the request (resource_missing). Nothing was charged.", page, StringComparison.Ordinal);
        Assert.DoesNotContain("price_pro_not_in_stripe", page, StringComparison.Ordinal);   // Stripe's message names our configuration, not for the user
    }

    [Fact]
    public async Task A_declined_card_shows_Stripes_message_for_the_customer()
    {
        var (_, session) = await app.SignedInAsync("stripe");
        await session.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-10" }, "/billing?handler=Buy");   // the customer exists now
        app.Stripe.FailNext(402, "card_error", "card_declined", "Your card was declined.", "payment_method");

        var answer = await session.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-10" }, "/billing?handler=Buy");

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains("The payment was declined: Your card was declined. Nothing was charged.", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stripe_unavailable_after_the_retries_says_to_try_again()
    {
        var (_, session) = await app.SignedInAsync("stripe");
        await session.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-10" }, "/billing?handler=Buy");
        app.Stripe.FailNext(503);
        app.Stripe.FailNext(503);

        var answer = await session.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-10" }, "/billing?handler=Buy");

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains("The payment provider could not be reached. Nothing was charged. Please try again in a minute.", await answer.Content.ReadAsStringAsync(),
            StringComparison.Ordinal);
    }
}

/// <summary>
/// Refunds of plan invoices with Stripe: since API version 2025-03-31 neither the invoice nor its <c>invoice.paid</c> event names
/// the payment intent that a later <c>charge.refunded</c> carries, so the webhook asks Stripe's invoice payments for it.
/// </summary>
public sealed class PlanRefundTests(StripeBillingApp app) : IClassFixture<StripeBillingApp>
{
    private async Task<HttpResponseMessage> DeliverAsync(object stripeEvent)
    {
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(stripeEvent);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe") { Content = new ByteArrayContent(payload) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add("Stripe-Signature", FakeStripe.Sign(payload, StripeBillingApp.WebhookSecret, DateTimeOffset.UtcNow));
        return await app.CreateClient().SendAsync(request);
    }

    [Fact]
    public async Task A_refund_of_a_plan_invoice_takes_back_its_allowance_found_through_Stripes_invoice_payments()
    {
        var user = await app.CreateUserAsync($"refund-{Guid.NewGuid():N}@example.test", "password123");
        var customer = $"cus_{Guid.NewGuid():N}"[..18];
        await app.Database.ExecuteAsync($"""
            insert into billing_accounts (user_id, stripe_customer_id, plan_id, cancel_at_period_end, state_as_of, dunning_step, updated_at)
            values ('{user.Id}', '{customer}', 'free', false, 0, 0, now())
            """);
        var invoiceId = $"in_{Guid.NewGuid():N}";
        var pi = $"pi_{Guid.NewGuid():N}";
        Assert.Equal(HttpStatusCode.OK, (await DeliverAsync(BillingApp.Event("invoice.paid",
            BillingApp.Invoice(customer, $"sub_{Guid.NewGuid():N}"[..16], "starter", 1000, id: invoiceId, billingReason: "subscription_create")))).StatusCode);
        Assert.Equal(10_000_000, await Balance(user.Id));
        app.Stripe.AddInvoicePayment(invoiceId, pi, 1000);

        Assert.Equal(HttpStatusCode.OK, (await DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(pi, 1000, 500)))).StatusCode);
        Assert.Equal(5_000_000, await Balance(user.Id));
        var lookup = app.Stripe.Requests.Single(r => r.PathAndQuery.StartsWith("/v1/invoice_payments", StringComparison.Ordinal) && r.PathAndQuery.Contains(pi, StringComparison.Ordinal));
        Assert.Equal(FakeStripe.ApiVersion, lookup.Headers["Stripe-Version"]);

        // The row keeps the payment intent now: the rest of the refund needs no second question to Stripe.
        Assert.Equal(HttpStatusCode.OK, (await DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(pi, 1000, 1000)))).StatusCode);
        Assert.Equal(0, await Balance(user.Id));
        Assert.Single(app.Stripe.Requests, r => r.PathAndQuery.StartsWith("/v1/invoice_payments", StringComparison.Ordinal) && r.PathAndQuery.Contains(pi, StringComparison.Ordinal));
        Assert.Equal(pi, await app.Database.ScalarAsync<string>($"select payment_intent_id from stripe_payments where id = '{invoiceId}'"));
    }

    private Task<long> Balance(Guid userId) => app.Database.ScalarAsync<long>($"select coalesce((select balance_micros from credit_accounts where user_id = '{userId}'), 0)");
}
