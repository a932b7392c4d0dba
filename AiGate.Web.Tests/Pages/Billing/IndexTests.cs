using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Billing;
using AiGate.Web.Tests.Features.Billing;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Billing;

/// <summary>
/// <c>/billing</c> and the local TEST checkout over HTTP, as a browser uses them: choose, check out, pay on the
/// TEST page (which posts signed events to our webhook), land on the success page, see the balance and history.
/// </summary>
public sealed partial class IndexTests(BillingApp app) : IClassFixture<BillingApp>
{
    [Fact]
    public async Task Signed_out_visitors_are_sent_to_log_in_and_back_to_their_choice()
    {
        var answer = await app.NewSession().GetAsync("/billing?pack=pack-25");
        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        var location = answer.Headers.Location!.OriginalString;
        Assert.Contains("/Account/Login", location, StringComparison.Ordinal);
        Assert.Contains("ReturnUrl=%2Fbilling%3Fpack%3Dpack-25", location, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_pricing_pages_links_preselect_the_choice_and_bad_ones_explain_themselves()
    {
        var (_, session) = await app.SignedInAsync("bill");
        Assert.Matches("value=\"pack:pack-25\" checked=\"checked\"", await session.TextAsync("/billing?pack=pack-25"));
        var custom = await session.TextAsync("/billing?amount=1234");
        Assert.Matches("value=\"custom\" checked=\"checked\"", custom);
        Assert.Contains("value=\"12.34\"", custom, StringComparison.Ordinal);
        Assert.Contains("plan-selected\" data-testid=\"plan-pro\"", await session.TextAsync("/billing?plan=pro"), StringComparison.Ordinal);
        Assert.Contains("There is no credit pack", await session.TextAsync("/billing?pack=nope"), StringComparison.Ordinal);
        Assert.Contains("Choose an amount from $5.00 to $1000.00", await session.TextAsync("/billing?amount=1"), StringComparison.Ordinal);
        Assert.Contains("TEST MODE", await session.TextAsync("/billing"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Buying_a_pack_through_the_local_TEST_checkout_credits_it_once_and_shows_it_in_the_history()
    {
        var (userId, session) = await app.SignedInAsync("bill");

        var started = await session.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-25" }, "/billing?handler=Buy");
        Assert.Equal(HttpStatusCode.Redirect, started.StatusCode);
        var checkoutUrl = started.Headers.Location!.OriginalString;
        Assert.StartsWith(LocalStripe.CheckoutPath, checkoutUrl, StringComparison.Ordinal);
        var checkoutPage = await session.TextAsync(checkoutUrl);
        Assert.Contains("TEST MODE", checkoutPage, StringComparison.Ordinal);
        Assert.Contains("$25.00", checkoutPage, StringComparison.Ordinal);

        var sessionId = SessionId().Match(checkoutUrl).Groups[1].Value;
        var paid = await session.SubmitAsync(checkoutUrl, new() { ["session"] = sessionId }, $"{LocalStripe.CheckoutPath}?handler=Pay");
        Assert.Equal(HttpStatusCode.Redirect, paid.StatusCode);
        var successUrl = new Uri(paid.Headers.Location!.OriginalString).PathAndQuery;
        Assert.Equal($"/billing/success?session_id={sessionId}", successUrl);

        // The webhook (posted by the TEST checkout) credited it; the success page's own fulfilment finds it done.
        var success = await session.TextAsync(successUrl);
        Assert.Contains("Payment received", success, StringComparison.Ordinal);
        Assert.Contains("$25.00", success, StringComparison.Ordinal);
        Assert.Equal(25_000_000, await app.BalanceAsync(userId));
        await session.TextAsync(successUrl);   // a reload changes nothing
        Assert.Equal(25_000_000, await app.BalanceAsync(userId));
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from stripe_events where type = 'checkout.session.completed' and outcome like '%{sessionId}%'"));

        var billing = await session.TextAsync("/billing");
        Assert.Contains("data-testid=\"billing-balance\">$25.00", billing, StringComparison.Ordinal);
        Assert.Contains($"credit pack pack-25, Stripe Checkout {sessionId}", billing, StringComparison.Ordinal);

        // The receipt: the charge's receipt_url, looked up through the payment intent (here the local TEST receipt page).
        var receipt = await session.GetAsync($"/billing?handler=Receipt&id={sessionId}");
        Assert.Equal(HttpStatusCode.Redirect, receipt.StatusCode);
        var receiptUrl = receipt.Headers.Location!.OriginalString;
        Assert.StartsWith(LocalStripe.ReceiptPath, receiptUrl, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"receipt-amount\">$25.00", await session.TextAsync(receiptUrl), StringComparison.Ordinal);
        var (_, stranger) = await app.SignedInAsync("bill");
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/billing?handler=Receipt&id={sessionId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync(receiptUrl)).StatusCode);
    }

    [Fact]
    public async Task The_success_page_fulfils_when_it_gets_there_before_the_webhook_and_the_webhook_then_adds_nothing()
    {
        var (userId, session) = await app.SignedInAsync("bill");
        var started = await session.SubmitAsync("/billing", new() { ["choice"] = "custom", ["customAmount"] = "12.50" }, "/billing?handler=Buy");
        var sessionId = SessionId().Match(started.Headers.Location!.OriginalString).Groups[1].Value;

        // Stripe charged the card, but the webhook has not arrived yet.
        var local = app.Services.GetRequiredService<LocalStripe>();
        var events = local.Pay(sessionId);
        Assert.Contains("Payment received", await session.TextAsync($"/billing/success?session_id={sessionId}"), StringComparison.Ordinal);
        Assert.Equal(12_500_000, await app.BalanceAsync(userId));

        // Now the webhook and another success-page load race; still one credit.
        await Task.WhenAll(app.DeliverAsync(events[0]), session.TextAsync($"/billing/success?session_id={sessionId}"));
        Assert.Equal(12_500_000, await app.BalanceAsync(userId));
    }

    [Fact]
    public async Task Another_users_checkout_session_is_not_found()
    {
        var (_, owner) = await app.SignedInAsync("bill");
        var started = await owner.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-10" }, "/billing?handler=Buy");
        var url = started.Headers.Location!.OriginalString;
        var sessionId = SessionId().Match(url).Groups[1].Value;

        var (_, other) = await app.SignedInAsync("bill");
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync(url)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/billing/success?session_id={sessionId}")).StatusCode);
    }

    [Fact]
    public async Task A_bad_custom_amount_is_refused_with_a_clear_message()
    {
        var (_, session) = await app.SignedInAsync("bill");
        foreach (var amount in new[] { "abc", "1", "5000000", "10.123" })
        {
            var answer = await session.SubmitAsync("/billing", new() { ["choice"] = "custom", ["customAmount"] = amount }, "/billing?handler=Buy");
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Contains("data-testid=\"billing-error\"", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Subscribing_then_switching_and_cancelling_in_the_TEST_portal_changes_plan_renewal_and_allowance()
    {
        var (userId, session) = await app.SignedInAsync("bill");
        var started = await session.SubmitAsync("/billing", new() { ["plan"] = "starter" }, "/billing?handler=Subscribe");
        var checkoutUrl = started.Headers.Location!.OriginalString;
        var sessionId = SessionId().Match(checkoutUrl).Groups[1].Value;
        var paid = await session.SubmitAsync(checkoutUrl, new() { ["session"] = sessionId }, $"{LocalStripe.CheckoutPath}?handler=Pay");
        Assert.Contains("Subscribed", await session.TextAsync(new Uri(paid.Headers.Location!.OriginalString).PathAndQuery), StringComparison.Ordinal);

        var billing = await session.TextAsync("/billing");
        Assert.Contains("data-testid=\"current-plan\">Starter", billing, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"renewal\">Renews on", billing, StringComparison.Ordinal);
        Assert.Equal(10_000_000, await app.BalanceAsync(userId));

        var portal = await session.SubmitAsync("/billing", [], "/billing?handler=Manage");
        Assert.Equal(LocalStripe.PortalPath, portal.Headers.Location!.OriginalString);
        await session.SubmitAsync(LocalStripe.PortalPath, new() { ["plan"] = "pro" }, $"{LocalStripe.PortalPath}?handler=Switch");
        Assert.Contains("data-testid=\"current-plan\">Pro", await session.TextAsync("/billing"), StringComparison.Ordinal);
        Assert.Equal(10_000_000, await app.BalanceAsync(userId));   // the switch invoice (subscription_update) grants nothing

        await session.SubmitAsync(LocalStripe.PortalPath, [], $"{LocalStripe.PortalPath}?handler=Cancel");
        var after = await session.TextAsync("/billing");
        Assert.Contains("data-testid=\"current-plan\">Free", after, StringComparison.Ordinal);
        Assert.Equal(10_000_000, await app.BalanceAsync(userId));   // the balance is kept
    }

    [Fact]
    public async Task Past_due_and_debt_are_shown_as_warnings()
    {
        var (userId, session) = await app.SignedInAsync("bill");
        var customer = await app.LinkCustomerAsync(userId);
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, "sub_pd", "starter", 0)));
        await app.Database.ExecuteAsync($"insert into credit_accounts (user_id, balance_micros, held_micros, updated_at) values ('{userId}', 0, 0, now())");
        await app.Services.GetRequiredService<AiGate.Web.Features.Credits.Ledger>().PostAsync(userId, "refund", -2_000_000, "test debt", null, CancellationToken.None);

        var html = await session.TextAsync("/billing");
        Assert.Contains("data-testid=\"past-due\"", html, StringComparison.Ordinal);
        Assert.Contains("You owe $2.00", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_nav_shows_Billing_to_confirmed_users()
    {
        var (_, session) = await app.SignedInAsync("bill");
        Assert.Contains("<a href=\"/billing\">Billing</a>", await session.TextAsync("/dashboard"), StringComparison.Ordinal);
    }

    [GeneratedRegex("session=([A-Za-z0-9_]+)")]
    private static partial Regex SessionId();
}
