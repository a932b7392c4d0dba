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
        var missing = await Assert.ThrowsAsync<StripeException>(() => _client.GetInvoiceAsync("in_nope", CancellationToken.None));
        Assert.Equal(404, missing.Status);
        Assert.Equal("resource_missing", missing.Code);
        Assert.Contains("No such object: 'in_nope'", missing.Message, StringComparison.Ordinal);
        Assert.Single(_stripe.Requests, r => r.PathAndQuery == "/v1/invoices/in_nope");

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

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _stripe.DisposeAsync();
    }
}
