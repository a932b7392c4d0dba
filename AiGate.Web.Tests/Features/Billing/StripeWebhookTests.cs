using System.Net;
using System.Net.Http.Json;
using System.Text;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>
/// <c>POST /webhooks/stripe</c> over HTTP against the real database: signatures, idempotency under concurrency,
/// each handled event type, ordering, refunds and disputes. After each money test the ledger equals the balance.
/// </summary>
public sealed class StripeWebhookTests(BillingApp app) : IClassFixture<BillingApp>
{
    private async Task<(Guid UserId, string Customer)> CustomerAsync()
    {
        var userId = await app.CreateUserAsync();
        return (userId, await app.LinkCustomerAsync(userId));
    }

    private async Task AssertLedgerEqualsBalanceAsync(Guid userId) => Assert.Equal(await app.LedgerSumAsync(userId), await app.BalanceAsync(userId));

    [Fact]
    public async Task The_same_event_delivered_25_times_concurrently_credits_once_and_every_delivery_gets_200()
    {
        var (userId, customer) = await CustomerAsync();
        var stripeEvent = BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 2500));

        var answers = await Task.WhenAll(Enumerable.Range(0, 25).Select(_ => app.DeliverAsync(stripeEvent, client: app.CreateClient())));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        Assert.Equal(25_000_000, await app.BalanceAsync(userId));
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from ledger_entries where user_id = '{userId}' and kind = 'purchase'"));
        await AssertLedgerEqualsBalanceAsync(userId);
    }

    [Fact]
    public async Task Two_different_events_for_one_session_credit_it_once()
    {
        var (userId, customer) = await CustomerAsync();
        var session = BillingApp.PaidSession(userId, customer, 1000, kind: "pack", item: "pack-10", sessionId: $"cs_test_{Guid.NewGuid():N}");

        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(BillingApp.Event("checkout.session.completed", session))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(BillingApp.Event("checkout.session.async_payment_succeeded", session))).StatusCode);

        Assert.Equal(10_000_000, await app.BalanceAsync(userId));
        Assert.Equal(2, await app.Database.ScalarAsync<long>($"select count(*) from stripe_events where outcome like '%{((dynamic)session).id}%'"));
        await AssertLedgerEqualsBalanceAsync(userId);
    }

    [Fact]
    public async Task A_pack_credits_its_price_plus_its_bonus_and_amounts_come_from_Stripe()
    {
        var (userId, customer) = await CustomerAsync();
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 10000, kind: "pack", item: "pack-100")));
        Assert.Equal(105_000_000, await app.BalanceAsync(userId));   // $100 + the configured $5 bonus

        // A session that claims a pack but was paid a different amount credits exactly what was paid.
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 700, kind: "pack", item: "pack-100")));
        Assert.Equal(112_000_000, await app.BalanceAsync(userId));
    }

    [Fact]
    public async Task An_unpaid_session_credits_nothing_until_its_async_payment_succeeds_and_a_failed_one_never()
    {
        var (userId, customer) = await CustomerAsync();
        var pending = BillingApp.PaidSession(userId, customer, 2000, paymentStatus: "unpaid", sessionId: "cs_test_async_" + Guid.NewGuid().ToString("N"));
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", pending));
        Assert.Equal(0, await app.BalanceAsync(userId));

        var failed = BillingApp.PaidSession(userId, customer, 3000, paymentStatus: "unpaid");
        await app.DeliverAsync(BillingApp.Event("checkout.session.async_payment_failed", failed));
        Assert.Equal(0, await app.BalanceAsync(userId));

        var paid = BillingApp.PaidSession(userId, customer, 2000, sessionId: (string)((dynamic)pending).id);
        await app.DeliverAsync(BillingApp.Event("checkout.session.async_payment_succeeded", paid));
        Assert.Equal(20_000_000, await app.BalanceAsync(userId));
    }

    [Fact]
    public async Task Bad_signatures_get_400_and_change_nothing()
    {
        var (userId, customer) = await CustomerAsync();
        var stripeEvent = BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 5000));
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(stripeEvent);
        var now = DateTimeOffset.UtcNow;
        string[] headers =
        [
            "",
            "t=123,v1=abc",
            FakeStripe.Sign(payload, "whsec_wrong", now),
            FakeStripe.Sign(payload, app.WebhookSecret, now.AddMinutes(-6)),
            FakeStripe.Sign(payload, app.WebhookSecret, now.AddMinutes(6)),
        ];
        foreach (var header in headers)
            Assert.Equal(HttpStatusCode.BadRequest, (await app.DeliverAsync(payload, header)).StatusCode);

        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(payload).Replace("5000", "9000", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.BadRequest, (await app.DeliverAsync(tampered, FakeStripe.Sign(payload, app.WebhookSecret, now))).StatusCode);

        Assert.Equal(0, await app.BalanceAsync(userId));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from stripe_events where id = '{((dynamic)stripeEvent).id}'"));
    }

    [Fact]
    public async Task An_event_signed_with_two_v1_signatures_one_from_a_rolled_secret_is_accepted()
    {
        // While an endpoint's secret is rolled, Stripe signs with the old and the new one: any matching v1 is enough.
        var (userId, customer) = await CustomerAsync();
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 1500)));
        var header = FakeStripe.Sign(payload, "whsec_rolled_away_" + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow, app.WebhookSecret);
        Assert.Equal(2, header.Split(",v1=").Length - 1);

        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(payload, header)).StatusCode);
        Assert.Equal(15_000_000, await app.BalanceAsync(userId));
    }

    [Fact]
    public async Task A_tampered_body_is_refused_and_changes_nothing()
    {
        var (userId, customer) = await CustomerAsync();
        var stripeEvent = BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 1000));
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(stripeEvent);
        var signature = FakeStripe.Sign(payload, app.WebhookSecret, DateTimeOffset.UtcNow);
        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(payload).Replace("\"amount_total\":1000", "\"amount_total\":100000", StringComparison.Ordinal));
        Assert.NotEqual(payload, tampered);

        var answer = await app.DeliverAsync(tampered, signature);

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        Assert.Contains("invalid Stripe-Signature", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await app.BalanceAsync(userId));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from stripe_events where id = '{((dynamic)stripeEvent).id}'"));
    }

    [Fact]
    public async Task A_timestamp_outside_the_five_minute_tolerance_is_refused_either_way_and_one_inside_is_accepted()
    {
        var (userId, customer) = await CustomerAsync();
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 700)));
        var now = DateTimeOffset.UtcNow;

        Assert.Equal(HttpStatusCode.BadRequest, (await app.DeliverAsync(payload, FakeStripe.Sign(payload, app.WebhookSecret, now.AddSeconds(-330)))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await app.DeliverAsync(payload, FakeStripe.Sign(payload, app.WebhookSecret, now.AddSeconds(330)))).StatusCode);
        Assert.Equal(0, await app.BalanceAsync(userId));

        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(payload, FakeStripe.Sign(payload, app.WebhookSecret, now.AddSeconds(-270)))).StatusCode);
        Assert.Equal(7_000_000, await app.BalanceAsync(userId));
    }

    [Theory]
    [InlineData("2024-06-20")]            // before release trains: what this endpoint was created with until Stripe.net came
    [InlineData("2026-07-29.dahlia")]     // another release train
    public async Task An_event_of_another_API_version_gets_400_and_changes_nothing(string apiVersion)
    {
        var (userId, customer) = await CustomerAsync();
        var stripeEvent = BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 2000), apiVersion: apiVersion);

        var answer = await app.DeliverAsync(stripeEvent);

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        Assert.Contains(FakeStripe.ApiVersion, await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await app.BalanceAsync(userId));
        // Not recorded: once the endpoint's version is corrected, Stripe's retry of this event is applied.
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from stripe_events where id = '{((dynamic)stripeEvent).id}'"));
    }

    [Fact]
    public async Task An_event_of_the_same_release_train_on_another_date_is_applied()
    {
        var (userId, customer) = await CustomerAsync();
        var train = FakeStripe.ApiVersion.Split('.')[1];
        var answer = await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 300), apiVersion: $"2099-01-01.{train}"));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(3_000_000, await app.BalanceAsync(userId));
    }

    [Fact]
    public async Task A_signed_body_that_is_not_an_event_gets_400_and_an_unknown_event_type_gets_200()
    {
        var notJson = Encoding.UTF8.GetBytes("{not json");
        Assert.Equal(HttpStatusCode.BadRequest, (await app.DeliverAsync(notJson)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(BillingApp.Event("customer.created", new { id = "cus_x", @object = "customer" }))).StatusCode);
    }

    [Fact]
    public async Task A_signed_event_whose_object_lacks_a_field_is_recorded_as_unreadable_and_changes_nothing()
    {
        var (userId, customer) = await CustomerAsync();
        var broken = BillingApp.Event("invoice.paid", new { id = "in_broken_" + Guid.NewGuid().ToString("N")[..8], @object = "invoice", customer });

        var answer = await app.DeliverAsync(broken);

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);   // Stripe must not retry it forever
        Assert.StartsWith("unreadable object", await app.Database.ScalarAsync<string>($"select outcome from stripe_events where id = '{((dynamic)broken).id}'"),
            StringComparison.Ordinal);
        Assert.Equal(0, await app.BalanceAsync(userId));
        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(broken)).StatusCode);   // and a redelivery is a duplicate
    }

    [Fact]
    public async Task Invoice_paid_grants_the_plans_allowance_once_per_invoice_and_sets_the_plan()
    {
        var (userId, customer) = await CustomerAsync();
        var invoice = BillingApp.Invoice(customer, "sub_1" + Guid.NewGuid().ToString("N")[..8], "starter", 1000);
        await app.DeliverAsync(BillingApp.Event("invoice.paid", invoice));
        await app.DeliverAsync(BillingApp.Event("invoice.paid", invoice));   // a second event for the same invoice

        Assert.Equal(10_000_000, await app.BalanceAsync(userId));
        Assert.Equal("starter", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{userId}'"));
        var reference = await app.Database.ScalarAsync<string>($"select reference from ledger_entries where user_id = '{userId}' and kind = 'grant'");
        Assert.Contains("Starter", reference!, StringComparison.Ordinal);
        Assert.Contains(((dynamic)invoice).id, reference!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invoice_paid_grants_the_allowance_in_proportion_to_what_was_paid_and_nothing_for_a_free_trial()
    {
        // Starter: $10 a month for a $10 allowance. A 50 % coupon pays $5: half the allowance.
        var (userId, customer) = await CustomerAsync();
        var sub = "sub_" + Guid.NewGuid().ToString("N")[..12];
        var halfPrice = BillingApp.Invoice(customer, sub, "starter", 500, billingReason: "subscription_create");
        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(BillingApp.Event("invoice.paid", halfPrice))).StatusCode);
        Assert.Equal(5_000_000, await app.BalanceAsync(userId));

        // A trial's $0 invoice activates the plan and grants nothing.
        var (trialUser, trialCustomer) = await CustomerAsync();
        var trial = BillingApp.Invoice(trialCustomer, "sub_" + Guid.NewGuid().ToString("N")[..12], "starter", 0, billingReason: "subscription_create");
        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(BillingApp.Event("invoice.paid", trial))).StatusCode);
        Assert.Equal(0, await app.BalanceAsync(trialUser));
        Assert.Equal("starter", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{trialUser}'"));
        Assert.Contains("nothing granted", await app.Database.ScalarAsync<string>(
            $"select outcome from stripe_events where outcome like '%{((dynamic)trial).id}%'") ?? "", StringComparison.Ordinal);

        // Paying more than the plan's price (tax, say) never grants more than the allowance.
        var (taxUser, taxCustomer) = await CustomerAsync();
        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(taxCustomer, "sub_" + Guid.NewGuid().ToString("N")[..12], "starter", 1200)));
        Assert.Equal(10_000_000, await app.BalanceAsync(taxUser));
        await AssertLedgerEqualsBalanceAsync(userId);
    }

    [Fact]
    public async Task A_plan_switch_invoice_sets_the_plan_but_grants_no_allowance()
    {
        var (userId, customer) = await CustomerAsync();
        var invoice = BillingApp.Invoice(customer, "sub_" + Guid.NewGuid().ToString("N")[..12], "pro", 4000, billingReason: "subscription_update");

        Assert.Equal(HttpStatusCode.OK, (await app.DeliverAsync(BillingApp.Event("invoice.paid", invoice))).StatusCode);

        Assert.Equal("pro", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{userId}'"));
        Assert.Equal(0, await app.BalanceAsync(userId));
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from stripe_payments where user_id = '{userId}'"));
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from ledger_entries where user_id = '{userId}'"));
    }

    [Fact]
    public async Task Out_of_order_invoice_paid_and_subscription_updated_end_in_the_newest_state()
    {
        var (userId, customer) = await CustomerAsync();
        var sub = "sub_" + Guid.NewGuid().ToString("N")[..12];
        var t = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var periodEnd = DateTimeOffset.UtcNow.AddMonths(1).ToUnixTimeSeconds();

        // Stripe sent: payment failed (t), subscription past_due (t+1), upgrade to pro paid (t+2), subscription active on pro (t+3).
        // We receive them newest first.
        await app.DeliverAsync(BillingApp.Event("customer.subscription.updated", BillingApp.Subscription(customer, sub, "active", "pro", periodEnd), t + 3));
        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, sub, "pro", 5000, periodEnd: periodEnd), t + 2));
        await app.DeliverAsync(BillingApp.Event("customer.subscription.updated", BillingApp.Subscription(customer, sub, "past_due", "starter", periodEnd - 100), t + 1));
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0), t));

        var state = await app.Database.ScalarAsync<string>(
            $"select plan_id || '|' || subscription_status || '|' || extract(epoch from current_period_end)::bigint from billing_accounts where user_id = '{userId}'");
        Assert.Equal($"pro|active|{periodEnd}", state);
        Assert.Equal(55_000_000, await app.BalanceAsync(userId));   // the pro allowance, once
        await AssertLedgerEqualsBalanceAsync(userId);
    }

    [Fact]
    public async Task Payment_failed_marks_past_due_and_the_next_paid_invoice_clears_it()
    {
        var (userId, customer) = await CustomerAsync();
        var sub = "sub_" + Guid.NewGuid().ToString("N")[..12];
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0)));
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from billing_accounts where user_id = '{userId}' and past_due_since is not null"));

        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, sub, "starter", 1000)));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from billing_accounts where user_id = '{userId}' and past_due_since is not null"));
    }

    [Fact]
    public async Task Subscription_deleted_falls_back_to_the_free_plan_and_keeps_the_balance()
    {
        var (userId, customer) = await CustomerAsync();
        var sub = "sub_" + Guid.NewGuid().ToString("N")[..12];
        var t = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, sub, "starter", 1000), t));
        await app.DeliverAsync(BillingApp.Event("customer.subscription.deleted", BillingApp.Subscription(customer, sub, "canceled", "starter", t + 1000), t + 1));

        Assert.Equal("free|canceled", await app.Database.ScalarAsync<string>($"select plan_id || '|' || subscription_status from billing_accounts where user_id = '{userId}'"));
        Assert.Equal(10_000_000, await app.BalanceAsync(userId));
    }

    [Fact]
    public async Task A_refund_after_part_was_spent_claws_back_what_it_can_and_records_the_rest_as_visible_debt()
    {
        var (userId, customer) = await CustomerAsync();
        var pi = $"pi_{Guid.NewGuid():N}";
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 2000, paymentIntent: pi)));
        // $15 of the $20 is spent.
        await app.Services.GetRequiredService<Ledger>().PostAsync(userId, LedgerKinds.Usage, -15_000_000, "usage", null, CancellationToken.None);

        // Half refunded: $10 of credit to take back, $5 available.
        await app.DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(pi, 2000, 1000)));
        Assert.Equal(-5_000_000, await app.BalanceAsync(userId));
        var refunds = await app.Database.ScalarAsync<string>(
            $"select string_agg(amount_micros::text || ':' || reference, ' / ' order by id) from ledger_entries where user_id = '{userId}' and kind = 'refund'");
        Assert.Contains("-5000000:", refunds!, StringComparison.Ordinal);
        Assert.Contains("owed", refunds!, StringComparison.Ordinal);

        // The rest refunded later (amount_refunded is cumulative): another $10, all of it debt.
        await app.DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(pi, 2000, 2000)));
        Assert.Equal(-15_000_000, await app.BalanceAsync(userId));
        await AssertLedgerEqualsBalanceAsync(userId);
    }

    [Fact]
    public async Task A_refund_or_dispute_for_a_deleted_account_is_recorded_against_its_payment_and_answered_200()
    {
        var (userId, customer) = await CustomerAsync();
        var refunded = $"pi_{Guid.NewGuid():N}";
        var disputed = $"pi_{Guid.NewGuid():N}";
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 2000, paymentIntent: refunded)));
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 1000, paymentIntent: disputed)));
        // What /Account/Manage/Delete does: the organizations the user owns alone go (their personal one, whose id is theirs;
        // its credit account and billing account cascade), then the users row.
        await app.Database.ExecuteAsync($"delete from organizations where id = '{userId}'; delete from users where id = '{userId}'");
        var ledgerBefore = await app.Database.ScalarAsync<long>($"select count(*) from ledger_entries where user_id = '{userId}'");

        var refund = await app.DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(refunded, 2000, 2000)));
        var dispute = await app.DeliverAsync(BillingApp.Event("charge.dispute.created", new
        {
            id = "dp_" + Guid.NewGuid().ToString("N")[..10], @object = "dispute", amount = 1000, charge = "ch_1", currency = "usd", payment_intent = disputed,
            reason = "fraudulent", status = "needs_response",
        }));

        // 200: Stripe stops retrying. The payments keep the record; no balance or billing account is resurrected.
        Assert.Equal(HttpStatusCode.OK, refund.StatusCode);
        Assert.Equal(HttpStatusCode.OK, dispute.StatusCode);
        Assert.Equal(20_000_000, await app.Database.ScalarAsync<long>($"select clawed_back_micros from stripe_payments where payment_intent_id = '{refunded}'"));
        Assert.Equal(10_000_000, await app.Database.ScalarAsync<long>($"select clawed_back_micros from stripe_payments where payment_intent_id = '{disputed}'"));
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from credit_accounts where user_id = '{userId}'"));
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from billing_accounts where user_id = '{userId}'"));
        Assert.Equal(ledgerBefore, await app.Database.ScalarAsync<long>($"select count(*) from ledger_entries where user_id = '{userId}'"));
        var outcomes = await app.Database.ScalarAsync<string>(
            $"select string_agg(outcome, ' / ') from stripe_events where type in ('charge.refunded', 'charge.dispute.created') and (outcome like '%{refunded}%' or outcome like '%{disputed}%')");
        Assert.Contains("account deleted", outcomes ?? "", StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dispute_claws_back_and_freezes_the_accounts_keys()
    {
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 0);
        var customer = await app.LinkCustomerAsync(userId);
        var pi = $"pi_{Guid.NewGuid():N}";
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(userId, customer, 1000, paymentIntent: pi)));
        var chat = new { model = "echo/echo-1", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 5 };
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", chat)).StatusCode);

        await app.DeliverAsync(BillingApp.Event("charge.dispute.created", new
        {
            id = "dp_" + Guid.NewGuid().ToString("N")[..10], @object = "dispute", amount = 1000, charge = "ch_1", currency = "usd", payment_intent = pi,
            reason = "fraudulent", status = "needs_response",
        }));

        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from billing_accounts where user_id = '{userId}' and disputed_at is not null"));
        await app.WaitForUsageAsync();
        await AssertLedgerEqualsBalanceAsync(userId);
        Assert.True(await app.BalanceAsync(userId) <= 0);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        HttpStatusCode status;
        do status = (await client.PostAsJsonAsync("/api/v1/chat/completions", chat)).StatusCode;
        while (status == HttpStatusCode.OK && DateTime.UtcNow < deadline && await Task.Delay(200).ContinueWith(_ => true));
        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task The_plan_sets_the_account_rate_limit_and_a_plan_change_applies_without_restart()
    {
        var (client, _, userId) = await app.CreateApiClientAsync();
        var customer = await app.LinkCustomerAsync(userId);
        var chat = new { model = "echo/echo-1", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 5 };
        var before = await client.PostAsJsonAsync("/api/v1/chat/completions", chat);
        Assert.Equal("100000", before.Headers.GetValues("x-ratelimit-limit-requests").Single());   // the free plan, as this fixture configures it

        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, "sub_" + Guid.NewGuid().ToString("N")[..10], "starter", 1000)));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        string limit;
        do limit = (await client.PostAsJsonAsync("/api/v1/chat/completions", chat)).Headers.GetValues("x-ratelimit-limit-requests").Single();
        while (limit != "300" && DateTime.UtcNow < deadline && await Task.Delay(100).ContinueWith(_ => true));
        Assert.Equal("300", limit);   // Starter: 300 requests a minute
    }
}
