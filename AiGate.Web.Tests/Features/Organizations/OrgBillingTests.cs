using System.Net;
using AiGate.Web.Features.Alerts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Features.Billing;
using AiGate.Web.Tests.Infrastructure;
using AiGate.Web.Tests.Features.Usage;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Organizations;

/// <summary>
/// Money of a team organization through Stripe (issue 17): the account is the organization, whose id is no user's. A team's
/// purchase is credited to the team, a refund or dispute of it is taken back from the team (not written off as a deleted
/// account's), an unpaid team plan goes through dunning (the owner is e-mailed) and ends on the free plan, and a team's budget
/// alerts, hard stop and low-balance e-mail work as a person's do.
/// </summary>
public sealed class OrgBillingTests(BillingApp app) : IClassFixture<BillingApp>
{
    [Fact]
    public async Task A_team_buys_credit_in_the_TEST_checkout_and_the_team_not_the_buyer_is_credited()
    {
        var team = await app.CreateTeamAsync("Buyers", OrgRole.Owner, OrgRole.Billing);
        var buyer = team[OrgRole.Billing];

        var started = await buyer.Session.SubmitAsync("/billing", new() { ["choice"] = "pack:pack-10" }, "/billing?handler=Buy");
        Assert.Equal(HttpStatusCode.Redirect, started.StatusCode);
        var checkout = started.Headers.Location!.OriginalString;
        Assert.StartsWith("/billing/test-checkout", new Uri(new Uri("https://localhost"), checkout).AbsolutePath, StringComparison.Ordinal);
        var paid = await buyer.Session.SubmitAsync(checkout, new(), checkout + "&handler=Pay");
        Assert.Equal(HttpStatusCode.Redirect, paid.StatusCode);

        Assert.True(await app.BalanceAsync(team.OrgId) >= 10_000_000, "the team was not credited");
        Assert.Equal(await app.LedgerSumAsync(team.OrgId), await app.BalanceAsync(team.OrgId));
        Assert.Equal(0L, await app.BalanceAsync(buyer.UserId));
    }

    [Fact]
    public async Task A_payment_Stripe_names_only_by_the_team_id_in_its_metadata_is_credited_to_the_team()
    {
        var team = await app.CreateTeamAsync("Metadata only", OrgRole.Owner);
        // A customer this app never linked (the session was created elsewhere, e.g. a payment link): the metadata names the account.
        var session = BillingApp.PaidSession(team.OrgId, $"cus_{Guid.NewGuid():N}"[..18], 1500);

        var answer = await app.DeliverAsync(BillingApp.Event("checkout.session.completed", session));

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(15_000_000, await app.BalanceAsync(team.OrgId));
    }

    [Fact]
    public async Task A_refund_of_a_team_payment_is_taken_back_from_the_team()
    {
        var (team, pi) = await PaidTeamAsync("Refunded", 2000);
        Assert.Equal(20_000_000, await app.BalanceAsync(team.OrgId));

        var refund = await app.DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(pi, 2000, 2000)));

        Assert.Equal(HttpStatusCode.OK, refund.StatusCode);
        Assert.Equal(0L, await app.BalanceAsync(team.OrgId));
        Assert.Equal(await app.LedgerSumAsync(team.OrgId), await app.BalanceAsync(team.OrgId));
        Assert.Equal(20_000_000, await app.Database.ScalarAsync<long>($"select clawed_back_micros from stripe_payments where payment_intent_id = '{pi}'"));
    }

    [Fact]
    public async Task A_dispute_of_a_team_payment_claws_back_and_freezes_the_teams_keys()
    {
        var (team, pi) = await PaidTeamAsync("Disputed", 1000);
        var (_, secret) = await app.IssueKeyAsync(team.OrgId, team[OrgRole.Owner].UserId, "team key");
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", secret);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/models")).StatusCode);

        var dispute = await app.DeliverAsync(BillingApp.Event("charge.dispute.created", new
        {
            id = "dp_" + Guid.NewGuid().ToString("N")[..10], @object = "dispute", amount = 1000, charge = "ch_1", currency = "usd", payment_intent = pi,
            reason = "fraudulent", status = "needs_response",
        }));

        Assert.Equal(HttpStatusCode.OK, dispute.StatusCode);
        Assert.Equal(0L, await app.BalanceAsync(team.OrgId));
        Assert.True(await app.Database.ScalarAsync<bool>($"select disputed_at is not null from billing_accounts where user_id = '{team.OrgId}'"));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        HttpStatusCode status;
        while ((status = (await client.GetAsync("/api/v1/models")).StatusCode) == HttpStatusCode.OK && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.NotEqual(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task An_unpaid_team_plan_is_dunned_by_e_mail_to_the_owner_and_ends_on_the_free_plan()
    {
        var team = await app.CreateTeamAsync("Unpaid", OrgRole.Owner, OrgRole.Member);
        var customer = await app.LinkCustomerAsync(team.OrgId);
        var sub = "sub_" + Guid.NewGuid().ToString("N")[..12];
        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, sub, "starter", 1000)));
        Assert.Equal("starter", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{team.OrgId}'"));
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0)));
        var start = DateTimeOffset.UtcNow.AddSeconds(1);

        foreach (var day in (int[])[0, 3, 7])
        {
            await using var scope = app.Services.CreateAsyncScope();
            await ActivatorUtilities.CreateInstance<DunningJob>(scope.ServiceProvider).RunDueAsync(start.AddDays(day), CancellationToken.None);
        }

        Assert.Equal("free", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{team.OrgId}'"));
        Assert.Equal(["payment-failed-1", "payment-failed-2", "plan-ended-unpaid"], (await app.MailToAsync(team[OrgRole.Owner].Email)).Select(m => m.Kind));
        Assert.Empty(await app.MailToAsync(team[OrgRole.Member].Email));
    }

    [Fact]
    public async Task A_team_over_its_budget_is_hard_stopped_and_its_owner_gets_the_budget_and_low_balance_e_mails()
    {
        var team = await app.CreateTeamAsync("Over budget", OrgRole.Owner, OrgRole.Member);
        await app.GrantAsync(team.OrgId, 500_000);   // under the default low-balance amount
        await app.Database.ExecuteAsync($"""
            insert into alert_settings (user_id, monthly_budget_micros, notify70, notify90, notify100, hard_stop, low_balance_enabled, low_balance_micros, updated_at)
            values ('{team.OrgId}', 2000000, true, true, true, true, true, 1000000, now())
            """);
        await UsageData.InsertAsync(app.Database,
            [new RawUsage(team.OrgId, Guid.NewGuid(), "openai/gpt-4o-mini", "openai", DateTimeOffset.UtcNow, 10, 10, 0, 2_500_000, 200, 5)]);

        await using (var scope = app.Services.CreateAsyncScope())
            await scope.ServiceProvider.GetRequiredService<UsageAlertChecker>().RunAsync(DateTimeOffset.UtcNow, CancellationToken.None);

        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from budget_stops where user_id = '{team.OrgId}'"));
        Assert.Equal(3L, await app.Database.ScalarAsync<long>($"select count(*) from usage_alerts where user_id = '{team.OrgId}'"));
        var kinds = (await app.MailToAsync(team[OrgRole.Owner].Email)).Select(m => m.Kind).Order().ToList();
        Assert.Equal(["low-balance", "usage-alert-100", "usage-alert-70", "usage-alert-90"], kinds);
        Assert.Empty(await app.MailToAsync(team[OrgRole.Member].Email));
    }

    /// <summary>A team whose linked Stripe customer paid <paramref name="cents"/> through Checkout; returns the payment intent.</summary>
    private async Task<(Team Team, string PaymentIntent)> PaidTeamAsync(string name, long cents)
    {
        var team = await app.CreateTeamAsync(name, OrgRole.Owner);
        var customer = await app.LinkCustomerAsync(team.OrgId);
        var pi = $"pi_{Guid.NewGuid():N}";
        var paid = await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(team.OrgId, customer, cents, paymentIntent: pi)));
        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        return (team, pi);
    }
}
