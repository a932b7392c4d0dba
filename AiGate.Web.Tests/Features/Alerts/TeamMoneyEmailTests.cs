using System.Net;
using AiGate.Web.Features.Alerts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Features.Billing;
using AiGate.Web.Tests.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Alerts;

/// <summary>
/// The money e-mails and money events of a team organization (issue 17), whose id is in no users row: usage alerts,
/// low-balance alerts and dunning reach its owner and its billing members with a confirmed e-mail, and nobody else; a
/// refund of the team's purchase is clawed back from the team's balance (not taken for a deleted account).
/// </summary>
public sealed class TeamMoneyEmailTests(BillingApp app) : IClassFixture<BillingApp>
{
    private sealed record Team(Guid Org, string Owner, string Billing, Guid BillingId, string Unconfirmed, string Admin, string Member)
    {
        public string[] Told => [Owner, Billing];
        public string[] NotTold => [Unconfirmed, Admin, Member];
    }

    private async Task<Team> TeamAsync()
    {
        async Task<(Guid Id, string Email)> User(string role, bool confirmed = true)
        {
            var email = $"team-{role}-{Guid.NewGuid():N}@example.com";
            return ((await app.CreateUserAsync(email, "password123", confirmed)).Id, email);
        }
        var owner = await User("owner");
        var org = await app.CreateTeamAsync(owner.Id);
        var billing = await User("billing");
        await app.AddMemberAsync(org, billing.Id, role: OrgRole.Billing);
        var unconfirmed = await User("unconfirmed", confirmed: false);
        await app.AddMemberAsync(org, unconfirmed.Id, role: OrgRole.Billing);
        var admin = await User("admin");
        await app.AddMemberAsync(org, admin.Id, role: OrgRole.Admin);
        var member = await User("member");
        await app.AddMemberAsync(org, member.Id);
        return new Team(org, owner.Email, billing.Email, billing.Id, unconfirmed.Email, admin.Email, member.Email);
    }

    private async Task<AlertRunResult> RunAlertsAsync()
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<UsageAlertChecker>().RunAsync(DateTimeOffset.UtcNow, CancellationToken.None);
    }

    private Task PostAsync(Guid account, string kind, long micros) =>
        app.Services.GetRequiredService<Ledger>().PostAsync(account, kind, micros, "test", null, CancellationToken.None);

    private async Task<List<string>> KindsAsync(string email) => [.. (await app.MailToAsync(email)).Select(m => m.Kind)];

    private async Task AssertOnlyToldAsync(Team team, params string[] kinds)
    {
        foreach (var email in team.Told) Assert.Equal(kinds, await KindsAsync(email));
        foreach (var email in team.NotTold) Assert.Empty(await KindsAsync(email));
        // Each outbox row names the person it went to (the outbox's user is a user, not the organization).
        Assert.Equal(team.BillingId, (await app.MailToAsync(team.Billing))[0].UserId);
    }

    [Fact]
    public async Task Usage_alerts_and_the_hard_stop_of_a_team_reach_its_owner_and_billing_members()
    {
        var team = await TeamAsync();
        await PostAsync(team.Org, LedgerKinds.Grant, 50_000_000);
        await app.Database.ExecuteAsync($"""
            insert into alert_settings (user_id, monthly_budget_micros, notify70, notify90, notify100, hard_stop, low_balance_enabled, low_balance_micros, updated_at)
            values ('{team.Org}', 10000000, true, true, true, true, false, 1000000, now())
            """);
        await UsageData.InsertAsync(app.Database, [new RawUsage(team.Org, Guid.NewGuid(), "openai/gpt-4o-mini", "openai", DateTimeOffset.UtcNow, 100, 10, 0, 7_500_000, 200, 50)]);

        await RunAlertsAsync();
        await RunAlertsAsync();
        await AssertOnlyToldAsync(team, "usage-alert-70");

        await UsageData.InsertAsync(app.Database, [new RawUsage(team.Org, Guid.NewGuid(), "openai/gpt-4o-mini", "openai", DateTimeOffset.UtcNow, 100, 10, 0, 2_600_000, 200, 50)]);
        await RunAlertsAsync();
        await AssertOnlyToldAsync(team, "usage-alert-70", "usage-alert-90", "usage-alert-100");
        // The team's own hard stop at 100 % is in force too (the team's id is in no users row).
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from budget_stops where user_id = '{team.Org}'"));
    }

    [Fact]
    public async Task A_low_balance_of_a_team_reaches_its_owner_and_billing_members_once()
    {
        var team = await TeamAsync();
        await PostAsync(team.Org, LedgerKinds.Grant, 3_000_000);
        await RunAlertsAsync();
        await AssertOnlyToldAsyncEmpty(team);

        await PostAsync(team.Org, LedgerKinds.Adjustment, -2_500_000);   // $0.50, under the default $1
        await RunAlertsAsync();
        await RunAlertsAsync();
        await AssertOnlyToldAsync(team, "low-balance");
        Assert.Contains("$0.50", (await app.MailToAsync(team.Owner)).Single().TextBody, StringComparison.Ordinal);
    }

    private async Task AssertOnlyToldAsyncEmpty(Team team)
    {
        foreach (var email in team.Told.Concat(team.NotTold)) Assert.Empty(await KindsAsync(email));
    }

    [Fact]
    public async Task Dunning_of_a_team_reaches_its_owner_and_billing_members()
    {
        var team = await TeamAsync();
        var customer = await app.LinkCustomerAsync(team.Org);
        var sub = "sub_" + Guid.NewGuid().ToString("N")[..12];
        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, sub, "starter", 1000)));
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0)));
        var start = DateTimeOffset.UtcNow.AddSeconds(1);

        await using (var scope = app.Services.CreateAsyncScope())
            Assert.Equal(1, await ActivatorUtilities.CreateInstance<DunningJob>(scope.ServiceProvider).RunDueAsync(start, CancellationToken.None));
        await AssertOnlyToldAsync(team, "payment-failed-1");
        Assert.Contains("/billing", (await app.MailToAsync(team.Owner))[0].TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refund_of_a_teams_purchase_is_clawed_back_from_the_team()
    {
        var team = await TeamAsync();
        var customer = $"cus_{Guid.NewGuid():N}"[..18];   // a customer not linked yet: the session's reference names the team
        var pi = $"pi_{Guid.NewGuid():N}";
        var paid = await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(team.Org, customer, 2000, paymentIntent: pi)));
        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        Assert.Equal(20_000_000, await app.BalanceAsync(team.Org));

        await app.DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(pi, 2000, 1000)));

        Assert.Equal(10_000_000, await app.BalanceAsync(team.Org));
        Assert.Equal(await app.BalanceAsync(team.Org), await app.LedgerSumAsync(team.Org));
    }
}
