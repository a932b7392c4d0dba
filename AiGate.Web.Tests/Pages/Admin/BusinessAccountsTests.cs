using System.Globalization;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>
/// /Admin/Business names its accounts (issue 17: each is an organization): a personal one by its user's e-mail, a team by
/// its name, linked to its organization's admin page; in the top accounts, the refunds and disputes, and the CSV. A class
/// of its own (its own database), so its calls and refunds stay out of <see cref="BusinessTests"/>' totals.
/// </summary>
public sealed class BusinessAccountsTests(BusinessApp app) : IClassFixture<BusinessApp>
{
    private static string Iso(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_team_account_is_named_by_its_organization_and_links_to_it_and_a_personal_one_by_its_users_email()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var alice = $"alice-{marker}@example.test";
        var (_, aliceId) = await app.ApiUserAsync(alice);
        var team = await app.CreateOrganizationAsync($"Acme {marker}");
        await app.AddMemberAsync(team, aliceId, OrgRole.Owner);
        await app.IssueKeyAsync(team, aliceId, "team key");

        // Metered calls as the usage writer records them (user_id is the organization): 3 for the team, 1 for alice's own.
        await app.Database.ExecuteAsync($"""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, provider_cost_micros, estimated, streamed, status, latency_ms, created_at)
            select 'biz-' || gen_random_uuid(), k.owner_id, k.id, '{BusinessApp.Gpt}', 'fake', 11, 7, 0, 176, 98, false, false, 200, 10, now()
            from api_keys k cross join generate_series(1, case when k.owner_id = '{team}' then 3 else 1 end)
            where k.owner_id in ('{team}', '{aliceId}')
            """);
        // Stripe: the team buys $10 and half of it is refunded.
        await app.RefundAsync(await app.BuyAsync(team, 1000), 1000, 500);

        using var admin = await app.AdminAsync();
        var today = Iso(DateOnly.FromDateTime(DateTime.UtcNow));
        var page = await admin.TextAsync($"/Admin/Business?from={today}&to={today}");
        Assert.Matches($"<tr data-account=\"{team}\">\\s*<th scope=\"row\"><a href=\"/Admin/Organizations/{team}\" data-testid=\"team-account\">Acme {marker}</a></th>" +
                       "<td class=\"num\">3</td>", page);
        Assert.Matches($"<tr data-account=\"{aliceId}\">\\s*<th scope=\"row\">{Regex.Escape(alice)}</th><td class=\"num\">1</td>", page);
        Assert.Matches($"<tr data-kind=\"refund\">\\s*<td class=\"nowrap\">[^<]+</td><td>refund</td>\\s*" +
                       $"<td><a href=\"/Admin/Organizations/{team}\" data-testid=\"team-account\">Acme {marker}</a></td>", page);
        Assert.DoesNotContain("deleted account", page, StringComparison.Ordinal);

        var csv = (await admin.TextAsync($"/Admin/Business?handler=Csv&from={today}&to={today}")).Split("\r\n");
        Assert.Contains($"account,,,Acme {marker},3,0.000528,0.000294,0.000234,44.3,0.000000,,", csv);
        Assert.Contains($"account,,,{alice},1,0.000176,0.000098,0.000078,44.3,0.000000,,", csv);
        Assert.Single(csv, l => l.StartsWith($"refund,{today} ", StringComparison.Ordinal) && l.Contains($",,Acme {marker},", StringComparison.Ordinal));
    }
}
