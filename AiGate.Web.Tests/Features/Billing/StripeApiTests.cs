using System.Net;
using AiGate.Web.Features.Billing;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Stripe;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>
/// <see cref="StripeApi"/> (Stripe.net's client, built as the app builds it) against <see cref="FakeStripe"/>, which refuses what
/// Stripe would: the wire format, the pinned version, idempotency keys, Stripe.net's retries and the errors callers see.
/// </summary>
public sealed class StripeApiTests : IAsyncLifetime
{
    private FakeStripe _stripe = null!;
    private StripeApi _api = null!;

    public async Task InitializeAsync()
    {
        _stripe = await FakeStripe.StartAsync();
        _api = Api(FakeStripe.SecretKey, _stripe.BaseUrl);
    }

    private static StripeApi Api(string key, Uri apiBase) =>
        new(StripeApi.CreateClient(new StripeOptions { SecretKey = key, ApiBase = apiBase, MaxRetries = 2, TimeoutSeconds = 5 }, new HttpClient()));

    private static Dictionary<string, string> Form(FakeUpstream.RecordedRequest r) =>
        QueryHelpers.ParseQuery(r.Body).ToDictionary(p => p.Key, p => p.Value.ToString());

    [Fact]
    public async Task A_checkout_session_is_created_form_encoded_with_the_pinned_version_and_an_idempotency_key()
    {
        var userId = Guid.NewGuid();
        var customer = await _api.CreateCustomerAsync(userId, "buyer@example.test", CancellationToken.None);
        var session = await _api.CreateCheckoutSessionAsync(new CheckoutRequest(userId, customer.Id, "payment", "AiGate credit $25.00", 2500, null, "pack",
            "pack-25", "https://app.test/billing/success?session_id={CHECKOUT_SESSION_ID}", "https://app.test/billing/cancel"), CancellationToken.None);

        Assert.StartsWith("cus_", customer.Id, StringComparison.Ordinal);
        Assert.Equal(userId.ToString(), customer.Metadata["user_id"]);
        Assert.StartsWith("cs_test_", session.Id, StringComparison.Ordinal);
        Assert.Equal(2500, session.AmountTotal);
        Assert.Equal(customer.Id, session.CustomerId);
        Assert.Equal(userId.ToString(), session.ClientReferenceId);
        Assert.Equal("pack-25", session.Metadata["item_id"]);
        Assert.StartsWith("https://checkout.stripe.com/", session.Url, StringComparison.Ordinal);

        var post = _stripe.Requests.Last(r => r.PathAndQuery == "/v1/checkout/sessions");
        Assert.Equal(StripeOptions.ApiVersion, post.Headers["Stripe-Version"]);
        Assert.Equal($"Bearer {FakeStripe.SecretKey}", post.Headers["Authorization"]);
        Assert.False(string.IsNullOrEmpty(post.Headers["Idempotency-Key"]));
        Assert.StartsWith("application/x-www-form-urlencoded", post.Headers["Content-Type"], StringComparison.Ordinal);
        var form = Form(post);
        Assert.Equal("2500", form["line_items[0][price_data][unit_amount]"]);
        Assert.Equal("usd", form["line_items[0][price_data][currency]"]);
        Assert.Equal("AiGate credit $25.00", form["line_items[0][price_data][product_data][name]"]);
        Assert.Equal("1", form["line_items[0][quantity]"]);
        Assert.Equal(userId.ToString(), form["client_reference_id"]);
        Assert.Equal(userId.ToString(), form["payment_intent_data[metadata][user_id]"]);
        Assert.Equal("https://app.test/billing/success?session_id={CHECKOUT_SESSION_ID}", form["success_url"]);
        Assert.DoesNotContain(form.Keys, k => k.StartsWith("subscription_data", StringComparison.Ordinal));

        var again = await _api.GetCheckoutSessionAsync(session.Id, CancellationToken.None);
        Assert.Equal(session.Id, again.Id);
        Assert.Equal("unpaid", again.PaymentStatus);
        Assert.Equal(StripeOptions.ApiVersion, _stripe.Requests.Last(r => r.PathAndQuery.StartsWith("/v1/checkout/sessions/", StringComparison.Ordinal)).Headers["Stripe-Version"]);
    }

    [Fact]
    public async Task The_customer_is_keyed_by_the_user_so_a_repeated_create_gets_the_same_customer_back()
    {
        var userId = Guid.NewGuid();
        var first = await _api.CreateCustomerAsync(userId, "same@example.test", CancellationToken.None);
        var second = await _api.CreateCustomerAsync(userId, "same@example.test", CancellationToken.None);
        Assert.Equal(first.Id, second.Id);
        Assert.All(_stripe.Requests.Where(r => r.PathAndQuery == "/v1/customers" && r.Body.Contains("same%40example.test", StringComparison.Ordinal)),
            r => Assert.Equal($"customer-{userId}", r.Headers["Idempotency-Key"]));
    }

    [Fact]
    public async Task A_subscription_session_names_the_plan_on_the_subscription()
    {
        _stripe.Prices["price_pro"] = 5000;
        var userId = Guid.NewGuid();
        var customer = await _api.CreateCustomerAsync(userId, "sub@example.test", CancellationToken.None);
        await _api.CreateCheckoutSessionAsync(new CheckoutRequest(userId, customer.Id, "subscription", "AiGate Pro plan", null, "price_pro", "plan", "pro",
            "https://app.test/s", "https://app.test/c"), CancellationToken.None);
        var form = Form(_stripe.Requests.Last(r => r.PathAndQuery == "/v1/checkout/sessions"));
        Assert.Equal("subscription", form["mode"]);
        Assert.Equal("price_pro", form["line_items[0][price]"]);
        Assert.Equal("pro", form["subscription_data[metadata][plan_id]"]);
        Assert.Equal(userId.ToString(), form["subscription_data[metadata][user_id]"]);
    }

    [Fact]
    public async Task A_price_Stripe_does_not_know_is_Stripes_400_resource_missing()
    {
        var customer = await _api.CreateCustomerAsync(Guid.NewGuid(), "price@example.test", CancellationToken.None);
        var ex = await Assert.ThrowsAsync<StripeException>(() => _api.CreateCheckoutSessionAsync(new CheckoutRequest(Guid.NewGuid(), customer.Id, "subscription",
            "AiGate Pro plan", null, "price_gone", "plan", "pro", "https://app.test/s", "https://app.test/c"), CancellationToken.None));
        Assert.Equal(HttpStatusCode.BadRequest, ex.HttpStatusCode);
        Assert.Equal("resource_missing", ex.StripeError.Code);
        Assert.Equal("line_items[0][price]", ex.StripeError.Param);
        Assert.False(ex.IsTransient());
    }

    [Fact]
    public async Task Server_errors_and_conflicts_are_retried_with_the_same_idempotency_key_and_create_once()
    {
        var before = _stripe.Created;
        _stripe.FailNext(500);
        _stripe.FailNext(409, "invalid_request_error", "lock_timeout", "This object cannot be accessed right now because another API request or Stripe process is currently accessing it.");

        var customer = await _api.CreateCustomerAsync(Guid.NewGuid(), "retry@example.test", CancellationToken.None);

        Assert.Equal(before + 1, _stripe.Created);
        var attempts = _stripe.Requests.Where(r => r.PathAndQuery == "/v1/customers" && r.Body.Contains("retry%40example.test", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, attempts.Count);
        Assert.Single(attempts.Select(a => a.Headers["Idempotency-Key"]).Distinct());
        Assert.StartsWith("cus_", customer.Id, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stripe_Should_Retry_decides_a_429_and_a_500()
    {
        _stripe.FailNext(429, "invalid_request_error", "rate_limit", "Request rate limit exceeded.", shouldRetry: true);
        Assert.StartsWith("cus_", (await _api.CreateCustomerAsync(Guid.NewGuid(), "limited@example.test", CancellationToken.None)).Id, StringComparison.Ordinal);
        Assert.Equal(2, _stripe.Requests.Count(r => r.PathAndQuery == "/v1/customers" && r.Body.Contains("limited%40example.test", StringComparison.Ordinal)));

        _stripe.FailNext(500, shouldRetry: false);
        var ex = await Assert.ThrowsAsync<StripeException>(() => _api.CreateCustomerAsync(Guid.NewGuid(), "noretry@example.test", CancellationToken.None));
        Assert.Equal(HttpStatusCode.InternalServerError, ex.HttpStatusCode);
        Assert.Single(_stripe.Requests, r => r.PathAndQuery == "/v1/customers" && r.Body.Contains("noretry%40example.test", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Persistent_server_errors_end_in_a_StripeException_after_the_retries()
    {
        for (var i = 0; i < 3; i++) _stripe.FailNext(503);
        var ex = await Assert.ThrowsAsync<StripeException>(() => _api.GetCheckoutSessionAsync("cs_test_whatever", CancellationToken.None));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ex.HttpStatusCode);
        Assert.Equal("api_error", ex.StripeError.Type);
        Assert.True(ex.IsTransient());
        Assert.Equal(3, _stripe.Requests.Count(r => r.PathAndQuery == "/v1/checkout/sessions/cs_test_whatever"));
    }

    [Fact]
    public async Task Stripe_errors_map_to_clear_exceptions_without_retrying()
    {
        var missing = await Assert.ThrowsAsync<StripeException>(() => _api.GetChargeAsync("ch_nope", CancellationToken.None));
        Assert.Equal(HttpStatusCode.NotFound, missing.HttpStatusCode);
        Assert.Equal("resource_missing", missing.StripeError.Code);
        Assert.Contains("No such charge: 'ch_nope'", missing.Message, StringComparison.Ordinal);
        Assert.Single(_stripe.Requests, r => r.PathAndQuery == "/v1/charges/ch_nope");

        var badKey = await Assert.ThrowsAsync<StripeException>(() => Api("sk_test_wrong", _stripe.BaseUrl).GetChargeAsync("ch_1", CancellationToken.None));
        Assert.Equal(HttpStatusCode.Unauthorized, badKey.HttpStatusCode);
        Assert.Equal("invalid_request_error", badKey.StripeError.Type);
        Assert.DoesNotContain("sk_test_wrong", badKey.Message, StringComparison.Ordinal);

        var noCustomer = await Assert.ThrowsAsync<StripeException>(() => _api.CreatePortalSessionAsync("cus_unknown", "https://app.test/billing", CancellationToken.None));
        Assert.Equal(HttpStatusCode.BadRequest, noCustomer.HttpStatusCode);
        Assert.Equal("resource_missing", noCustomer.StripeError.Code);
    }

    [Fact]
    public async Task An_unreachable_Stripe_is_a_StripeException_for_the_caller_not_a_network_exception()
    {
        var closed = await FakeStripe.StartAsync();
        var address = closed.BaseUrl;
        await closed.DisposeAsync();
        var ex = await Assert.ThrowsAsync<StripeException>(() => Api(FakeStripe.SecretKey, address).GetChargeAsync("ch_1", CancellationToken.None));
        Assert.Equal("api_connection_error", ex.StripeError.Type);
        Assert.True(ex.IsTransient());
    }

    [Fact]
    public async Task A_portal_session_is_created_for_a_known_customer()
    {
        var customer = await _api.CreateCustomerAsync(Guid.NewGuid(), "portal@example.test", CancellationToken.None);
        var portal = await _api.CreatePortalSessionAsync(customer.Id, "https://app.test/billing", CancellationToken.None);
        Assert.Equal(customer.Id, portal.Customer);
        Assert.Equal("https://app.test/billing", portal.ReturnUrl);
        Assert.StartsWith("https://billing.stripe.com/", portal.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Charges_and_payment_intents_are_read_from_Stripes_shapes()
    {
        _stripe.Objects["ch_1"] = new()
        {
            ["id"] = "ch_1", ["object"] = "charge", ["amount"] = 5000L, ["amount_refunded"] = 0L, ["currency"] = "usd", ["customer"] = "cus_1",
            ["payment_intent"] = "pi_1", ["refunded"] = false, ["receipt_url"] = "https://pay.stripe.com/receipts/x", ["created"] = 1_760_000_000L, ["livemode"] = false,
        };
        _stripe.Objects["pi_1"] = new()
        {
            ["id"] = "pi_1", ["object"] = "payment_intent", ["amount"] = 5000L, ["currency"] = "usd", ["status"] = "succeeded", ["latest_charge"] = "ch_1",
            ["created"] = 1_760_000_000L, ["livemode"] = false,
        };
        var intent = await _api.GetPaymentIntentAsync("pi_1", CancellationToken.None);
        Assert.Equal("ch_1", intent.LatestChargeId);
        var charge = await _api.GetChargeAsync(intent.LatestChargeId, CancellationToken.None);
        Assert.Equal("https://pay.stripe.com/receipts/x", charge.ReceiptUrl);
        Assert.Equal("pi_1", charge.PaymentIntentId);
        Assert.Equal(5000, charge.Amount);
    }

    [Fact]
    public async Task The_fake_refuses_what_Stripe_would_so_the_tests_above_can_fail()
    {
        using var http = new HttpClient { BaseAddress = _stripe.BaseUrl };
        async Task<(HttpStatusCode, string)> Send(HttpRequestMessage m)
        {
            using var r = await http.SendAsync(m);
            return (r.StatusCode, await r.Content.ReadAsStringAsync());
        }
        HttpRequestMessage Post(bool version = true, bool key = true, string body = "email=a%40b.test")
        {
            var m = new HttpRequestMessage(HttpMethod.Post, "/v1/customers") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/x-www-form-urlencoded") };
            m.Headers.Authorization = new("Bearer", FakeStripe.SecretKey);
            if (version) m.Headers.Add("Stripe-Version", FakeStripe.ApiVersion);
            if (key) m.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
            return m;
        }

        var (noVersion, _) = await Send(Post(version: false));
        var (noKey, _) = await Send(Post(key: false));
        var (unknown, unknownBody) = await Send(Post(body: "email=a%40b.test&colour=blue"));
        var (ok, _) = await Send(Post());
        var old = Post(version: false);
        old.Headers.Add("Stripe-Version", "2024-06-20");
        var (oldVersion, _) = await Send(old);

        Assert.Equal(HttpStatusCode.BadRequest, noVersion);
        Assert.Equal(HttpStatusCode.BadRequest, noKey);
        Assert.Equal(HttpStatusCode.BadRequest, unknown);
        Assert.Contains("\"code\":\"parameter_unknown\"", unknownBody, StringComparison.Ordinal);
        Assert.Contains("\"param\":\"colour\"", unknownBody, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, oldVersion);
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    public async Task DisposeAsync() => await _stripe.DisposeAsync();
}
