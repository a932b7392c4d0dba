using System.Text.Json;
using AiGate.Web.Features.Billing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>The typed Stripe client against <see cref="FakeStripe"/>: wire format, headers, retries and error mapping.</summary>
public sealed class StripeClientTests : IAsyncLifetime
{
    private FakeStripe _stripe = null!;
    private StripeClient _client = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _stripe = await FakeStripe.StartAsync();
        _http = new HttpClient();
        _client = Client(FakeStripe.SecretKey);
    }

    private StripeClient Client(string key) => new(_http, Options.Create(new StripeOptions { SecretKey = key, ApiBase = _stripe.BaseUrl, MaxRetries = 2 }),
        TimeProvider.System, NullLogger<StripeClient>.Instance);

    [Fact]
    public async Task A_checkout_session_is_created_form_encoded_with_the_pinned_version_and_an_idempotency_key()
    {
        var userId = Guid.NewGuid();
        var customer = await _client.CreateCustomerAsync(userId, "buyer@example.test", CancellationToken.None);
        var session = await _client.CreateCheckoutSessionAsync(new CheckoutRequest(userId, customer.Id, "payment", "AiGate credit $25.00", 2500, null, "pack",
            "pack-25", "https://app.test/billing/success?session_id={CHECKOUT_SESSION_ID}", "https://app.test/billing/cancel"), CancellationToken.None);

        Assert.StartsWith("cus_", customer.Id, StringComparison.Ordinal);
        Assert.Equal(userId.ToString(), customer.Metadata!["user_id"]);
        Assert.StartsWith("cs_test_", session.Id, StringComparison.Ordinal);
        Assert.Equal(2500, session.AmountTotal);
        Assert.Equal(userId.ToString(), session.ClientReferenceId);
        Assert.Equal("pack-25", session.Metadata!["item_id"]);
        Assert.StartsWith("https://checkout.stripe.com/", session.Url, StringComparison.Ordinal);

        var post = _stripe.Requests.Last(r => r.PathAndQuery == "/v1/checkout/sessions");
        Assert.Equal(StripeOptions.ApiVersion, post.Headers["Stripe-Version"]);
        Assert.False(string.IsNullOrEmpty(post.Headers["Idempotency-Key"]));
        Assert.StartsWith("application/x-www-form-urlencoded", post.Headers["Content-Type"], StringComparison.Ordinal);
        Assert.Contains("line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=2500", post.Body, StringComparison.Ordinal);
        Assert.Contains("client_reference_id=" + userId, post.Body, StringComparison.Ordinal);
        Assert.Contains("success_url=https%3A%2F%2Fapp.test%2Fbilling%2Fsuccess%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D", post.Body, StringComparison.Ordinal);

        var again = await _client.GetCheckoutSessionAsync(session.Id, CancellationToken.None);
        Assert.Equal(session.Id, again.Id);
        Assert.Equal("unpaid", again.PaymentStatus);
    }

    [Fact]
    public async Task A_subscription_session_names_the_plan_on_the_subscription()
    {
        var userId = Guid.NewGuid();
        var customer = await _client.CreateCustomerAsync(userId, "sub@example.test", CancellationToken.None);
        await _client.CreateCheckoutSessionAsync(new CheckoutRequest(userId, customer.Id, "subscription", "AiGate Pro plan", null, "price_pro", "plan", "pro",
            "https://app.test/s", "https://app.test/c"), CancellationToken.None);
        var body = _stripe.Requests.Last(r => r.PathAndQuery == "/v1/checkout/sessions").Body;
        Assert.Contains("mode=subscription", body, StringComparison.Ordinal);
        Assert.Contains("line_items%5B0%5D%5Bprice%5D=price_pro", body, StringComparison.Ordinal);
        Assert.Contains("subscription_data%5Bmetadata%5D%5Bplan_id%5D=pro", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_errors_and_429_are_retried_with_the_same_idempotency_key_and_create_once()
    {
        var before = _stripe.Created;
        _stripe.NextStatuses.Enqueue(500);
        _stripe.NextStatuses.Enqueue(429);

        var customer = await _client.CreateCustomerAsync(Guid.NewGuid(), "retry@example.test", CancellationToken.None);

        Assert.Equal(before + 1, _stripe.Created);
        var attempts = _stripe.Requests.Where(r => r.PathAndQuery == "/v1/customers" && r.Body.Contains("retry%40example.test", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, attempts.Count);
        Assert.Single(attempts.Select(a => a.Headers["Idempotency-Key"]).Distinct());
        Assert.StartsWith("cus_", customer.Id, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_error_with_Stripe_Should_Retry_false_is_attempted_once()
    {
        _stripe.FailNextWithoutRetry(500);
        var ex = await Assert.ThrowsAsync<StripeException>(() => _client.CreateCustomerAsync(Guid.NewGuid(), "noretry@example.test", CancellationToken.None));
        Assert.Equal(500, ex.Status);
        Assert.Single(_stripe.Requests, r => r.PathAndQuery == "/v1/customers" && r.Body.Contains("noretry%40example.test", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_repeated_create_for_the_same_user_gets_the_same_customer_back()
    {
        var userId = Guid.NewGuid();
        var first = await _client.CreateCustomerAsync(userId, "same@example.test", CancellationToken.None);
        var second = await _client.CreateCustomerAsync(userId, "same@example.test", CancellationToken.None);
        Assert.Equal(first.Id, second.Id);
    }

    [Fact]
    public async Task Persistent_server_errors_end_in_a_StripeException_after_the_retries()
    {
        for (var i = 0; i < 3; i++) _stripe.NextStatuses.Enqueue(503);
        var ex = await Assert.ThrowsAsync<StripeException>(() => _client.GetCheckoutSessionAsync("cs_test_whatever", CancellationToken.None));
        Assert.Equal(503, ex.Status);
        Assert.Equal("api_error", ex.Type);
        Assert.True(ex.Transient);
    }

    [Fact]
    public async Task Stripe_errors_map_to_clear_exceptions_without_retrying()
    {
        var missing = await Assert.ThrowsAsync<StripeException>(() => _client.GetChargeAsync("ch_nope", CancellationToken.None));
        Assert.Equal(404, missing.Status);
        Assert.Equal("resource_missing", missing.Code);
        Assert.Contains("No such object: 'ch_nope'", missing.Message, StringComparison.Ordinal);
        Assert.Single(_stripe.Requests, r => r.PathAndQuery == "/v1/charges/ch_nope");

        var badKey = await Assert.ThrowsAsync<StripeException>(() => Client("sk_test_wrong").GetChargeAsync("ch_1", CancellationToken.None));
        Assert.Equal(401, badKey.Status);
        Assert.Equal("invalid_request_error", badKey.Type);
        Assert.DoesNotContain("sk_test_wrong", badKey.Message, StringComparison.Ordinal);

        var noCustomer = await Assert.ThrowsAsync<StripeException>(() => _client.CreatePortalSessionAsync("cus_unknown", "https://app.test/billing", CancellationToken.None));
        Assert.Equal(400, noCustomer.Status);
        Assert.Equal("resource_missing", noCustomer.Code);
    }

    [Fact]
    public async Task A_portal_session_is_created_for_a_known_customer()
    {
        var customer = await _client.CreateCustomerAsync(Guid.NewGuid(), "portal@example.test", CancellationToken.None);
        var portal = await _client.CreatePortalSessionAsync(customer.Id, "https://app.test/billing", CancellationToken.None);
        Assert.Equal(customer.Id, portal.Customer);
        Assert.StartsWith("https://billing.stripe.com/", portal.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invoices_charges_and_payment_intents_are_retrieved_in_Stripes_shapes()
    {
        _stripe.Objects["in_1Q"] = new()
        {
            ["id"] = "in_1Q", ["object"] = "invoice", ["customer"] = "cus_1", ["subscription"] = "sub_1", ["status"] = "paid", ["amount_paid"] = 5000L,
            ["amount_due"] = 5000L, ["currency"] = "usd", ["payment_intent"] = "pi_1", ["charge"] = "ch_1", ["hosted_invoice_url"] = "https://invoice.stripe.com/i/x",
            ["billing_reason"] = "subscription_cycle", ["attempt_count"] = 1L, ["next_payment_attempt"] = null, ["created"] = 1_760_000_000L,
            ["subscription_details"] = new Dictionary<string, object?> { ["metadata"] = new Dictionary<string, string> { ["plan_id"] = "pro" } },
            ["lines"] = new Dictionary<string, object?>
            {
                ["object"] = "list", ["has_more"] = false, ["url"] = "/v1/invoices/in_1Q/lines",
                ["data"] = new[] { new Dictionary<string, object?> { ["id"] = "il_1", ["object"] = "line_item", ["period"] = new { start = 1_760_000_000L, end = 1_762_600_000L },
                    ["price"] = new { id = "price_pro", @object = "price" }, ["metadata"] = new Dictionary<string, string>() } },
            },
        };
        _stripe.Objects["ch_1"] = new()
        {
            ["id"] = "ch_1", ["object"] = "charge", ["amount"] = 5000L, ["amount_refunded"] = 0L, ["currency"] = "usd", ["customer"] = "cus_1",
            ["payment_intent"] = "pi_1", ["invoice"] = "in_1Q", ["refunded"] = false, ["receipt_url"] = "https://pay.stripe.com/receipts/x",
        };
        _stripe.Objects["pi_1"] = new()
        {
            ["id"] = "pi_1", ["object"] = "payment_intent", ["amount"] = 5000L, ["currency"] = "usd", ["status"] = "succeeded", ["latest_charge"] = "ch_1",
        };

        // Invoices reach AiGate only in webhooks: read Stripe's shape as the webhook handler does.
        var invoice = JsonSerializer.SerializeToElement(_stripe.Objects["in_1Q"]).Deserialize<StripeInvoice>(StripeJson.Options)!;
        Assert.Equal(5000, invoice.AmountPaid);
        Assert.Equal("pro", invoice.SubscriptionDetails!.Metadata!["plan_id"]);
        Assert.Equal(1_762_600_000, invoice.Lines!.Data[0].Period!.End);
        var intent = await _client.GetPaymentIntentAsync("pi_1", CancellationToken.None);
        Assert.Equal("ch_1", intent.LatestCharge);
        var charge = await _client.GetChargeAsync(intent.LatestCharge!, CancellationToken.None);
        Assert.Equal("https://pay.stripe.com/receipts/x", charge.ReceiptUrl);
    }

    [Fact]
    public async Task An_object_missing_a_field_Stripe_always_sends_is_an_invalid_response_not_a_null()
    {
        _stripe.Objects["ch_partial"] = new() { ["id"] = "ch_partial", ["object"] = "charge", ["amount"] = 100L };
        var ex = await Assert.ThrowsAsync<StripeException>(() => _client.GetChargeAsync("ch_partial", CancellationToken.None));
        Assert.Equal("invalid_response", ex.Type);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _stripe.DisposeAsync();
    }
}
