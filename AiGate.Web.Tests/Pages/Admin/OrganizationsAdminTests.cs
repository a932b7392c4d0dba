using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>
/// The admin console's organizations (issue 17): the list with search and paging, one organization, and a user's
/// memberships with the keys they created in each.
/// </summary>
public sealed partial class OrganizationsAdminTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private const string Password = "a long enough passphrase";

    [Fact]
    public async Task Organizations_are_found_by_name_or_member_email_and_show_owner_members_balance_and_their_page_the_roles_and_limits()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var ownerEmail = $"{marker}-owner@example.test";
        var owner = (await app.CreateUserAsync(ownerEmail, Password)).Id;
        var memberEmail = $"{marker}-member@example.test";
        var member = (await app.CreateUserAsync(memberEmail, Password)).Id;
        Guid team;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            team = await scope.ServiceProvider.GetRequiredService<OrgContext>().CreateAsync(owner, $"Acme {marker}", personal: false, CancellationToken.None);
            var db = scope.ServiceProvider.GetRequiredService<AiGate.Web.Data.AppDbContext>();
            db.Add(new OrgMember { OrgId = team, UserId = member, Role = OrgRole.Billing, JoinedAt = DateTimeOffset.UtcNow, MonthlyBudgetMicros = 12_500_000, RequestsPerMinute = 17 });
            await db.SaveChangesAsync();
        }
        await app.GrantAsync(team, 3_250_000);
        await app.IssueKeyAsync(team);
        using var admin = await SessionAsync(admin: true);

        var byName = await admin.TextAsync($"/admin/organizations?q=ACME%20{marker}");
        Assert.Contains("1 organization match", byName, StringComparison.Ordinal);
        var row = Assert.Single(OrgRow().Matches(byName)).Value;
        Assert.Contains($"href=\"/Admin/Organizations/{team}\">Acme {marker}</a>", row, StringComparison.Ordinal);
        Assert.Contains("<td>team</td>", row, StringComparison.Ordinal);
        Assert.Contains($"<td>{ownerEmail}</td>", row, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"org-members\">2<", row, StringComparison.Ordinal);
        Assert.Contains("$3.25", row, StringComparison.Ordinal);
        // By a member's e-mail: the team and the member's personal organization.
        var byEmail = await admin.TextAsync($"/admin/organizations?q={marker}-member");
        Assert.Contains("2 organizations match", byEmail, StringComparison.Ordinal);
        Assert.Contains($"data-org-id=\"{member}\"", byEmail, StringComparison.Ordinal);
        Assert.Contains("0 organizations match", await admin.TextAsync($"/admin/organizations?q=none-{marker}"), StringComparison.Ordinal);

        var page = await admin.TextAsync($"/Admin/Organizations/{team}");
        Assert.Contains($"data-testid=\"org-name\">Acme {marker}<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"org-balance\">$3.25<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"org-keys\">1 live, 1 in all<", page, StringComparison.Ordinal);
        var members = MemberRow().Matches(page).Select(m => m.Value).ToList();
        Assert.Equal(2, members.Count);
        Assert.Contains("data-testid=\"member-role\">owner<", members[0], StringComparison.Ordinal);
        Assert.Contains(ownerEmail, members[0], StringComparison.Ordinal);
        Assert.Contains("data-testid=\"member-role\">billing<", members[1], StringComparison.Ordinal);
        Assert.Contains("$12.50", members[1], StringComparison.Ordinal);
        Assert.Contains(">17<", members[1], StringComparison.Ordinal);
        Assert.Contains("data-testid=\"ledger-summary\"", page, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/Admin/Organizations/{Guid.NewGuid()}")).StatusCode);

        var user = await admin.TextAsync($"/Admin/Users/{member}");
        Assert.Contains($"<a href=\"/Admin/Organizations/{team}\">Acme {marker}</a>", user, StringComparison.Ordinal);
        Assert.Contains($"<a href=\"/Admin/Organizations/{member}\">", user, StringComparison.Ordinal);
        Assert.Contains("href=\"/Admin/Organizations\"", await admin.TextAsync("/Admin"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_user_page_lists_the_keys_the_user_created_in_each_of_their_organizations_named_and_linked_and_revokes_only_personal_ones()
    {
        var marker = Guid.NewGuid().ToString("N")[..10];
        var userEmail = $"{marker}-user@example.test";
        var user = (await app.CreateUserAsync(userEmail, Password)).Id;
        var owner = (await app.CreateUserAsync($"{marker}-owner@example.test", Password)).Id;
        var acme = await app.CreateOrganizationAsync($"Acme {marker}");
        await app.AddMemberAsync(acme, owner, OrgRole.Owner);
        await app.AddMemberAsync(acme, user, OrgRole.Admin);
        var beta = await app.CreateTeamAsync(owner);
        await app.AddMemberAsync(beta, user, OrgRole.Member);
        var left = await app.CreateTeamAsync(owner);
        await app.AddMemberAsync(left, user);

        await app.IssueKeyAsync(user);   // the personal organization's "test key"
        var (acmeKey, _) = await app.IssueKeyAsync(acme, user, $"acme key {marker}");
        var (betaKey, _) = await app.IssueKeyAsync(beta, user, $"beta key {marker}");
        await app.IssueKeyAsync(acme, owner, $"owner key {marker}");   // the same organization, someone else's key
        await app.IssueKeyAsync(left, user, $"left key {marker}");
        // A membership gone (as if removed without the revocation the Team page does): its keys are no longer the user's to list here.
        await app.Database.ExecuteAsync($"delete from organization_members where org_id = '{left}' and user_id = '{user}'");
        var betaName = await app.Database.ScalarAsync<string>($"select name from organizations where id = '{beta}'");

        using var admin = await SessionAsync(admin: true);
        var url = $"/Admin/Users/{user}";
        var page = await admin.TextAsync(url);

        var memberships = MembershipRow().Matches(page).ToDictionary(m => Guid.Parse(m.Groups[1].Value), m => m.Value);
        Assert.Equal(new HashSet<Guid> { user, acme, beta }, memberships.Keys.ToHashSet());
        Assert.Contains($"<a href=\"/Admin/Organizations/{acme}\">Acme {marker}</a>", memberships[acme], StringComparison.Ordinal);
        Assert.Contains("data-testid=\"membership-role\">admin<", memberships[acme], StringComparison.Ordinal);
        Assert.Contains("data-testid=\"membership-role\">member<", memberships[beta], StringComparison.Ordinal);
        Assert.Contains("data-testid=\"membership-role\">owner<", memberships[user], StringComparison.Ordinal);

        var keys = KeyRow().Matches(page).Select(m => (Org: Guid.Parse(m.Groups[1].Value), Html: m.Value)).ToList();
        Assert.Equal(3, keys.Count);
        var personal = Assert.Single(keys, k => k.Org == user).Html;
        Assert.Contains("<td>test key</td>", personal, StringComparison.Ordinal);
        Assert.Contains($"<a href=\"/Admin/Organizations/{user}\">{userEmail}</a>", personal, StringComparison.Ordinal);
        Assert.Contains("name=\"keyId\"", personal, StringComparison.Ordinal);   // revoked from here, as before
        var acmeRow = Assert.Single(keys, k => k.Org == acme).Html;
        Assert.Contains($"<td>acme key {marker}</td>", acmeRow, StringComparison.Ordinal);
        Assert.Contains($"data-testid=\"key-org\"><a href=\"/Admin/Organizations/{acme}\">Acme {marker}</a>", acmeRow, StringComparison.Ordinal);
        Assert.DoesNotContain("name=\"keyId\"", acmeRow, StringComparison.Ordinal);
        var betaRow = Assert.Single(keys, k => k.Org == beta).Html;
        Assert.Contains($"<td>beta key {marker}</td>", betaRow, StringComparison.Ordinal);
        Assert.Contains($"<a href=\"/Admin/Organizations/{beta}\">{betaName}</a>", betaRow, StringComparison.Ordinal);
        Assert.DoesNotContain($"owner key {marker}", page, StringComparison.Ordinal);
        Assert.DoesNotContain($"left key {marker}", page, StringComparison.Ordinal);
        Assert.DoesNotContain(betaKey.ToString(), page, StringComparison.Ordinal);   // no revoke form carries a team key's id

        // The revoke handler still takes only the personal organization's keys: a team key's id is refused and stays live.
        await admin.SubmitAsync(url, new() { ["keyId"] = acmeKey.ToString(), ["reason"] = "not this page's key" }, url + "?handler=RevokeKey");
        Assert.Contains("No such key on this account.", await admin.TextAsync(url), StringComparison.Ordinal);
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from api_keys where id = '{acmeKey}' and revoked_at is not null"));
    }

    [Fact]
    public async Task Only_site_admins_see_the_organizations_pages_even_the_owner_of_the_organization_does_not()
    {
        using var user = await SessionAsync(admin: false);
        var userId = await app.Database.ScalarAsync<Guid>("select id from users order by created_at desc limit 1");
        foreach (var url in new[] { "/Admin/Organizations", $"/Admin/Organizations/{userId}" })
        {
            var answer = await user.GetAsync(url);
            Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
            Assert.Contains("/Account/AccessDenied", answer.Headers.Location?.OriginalString, StringComparison.Ordinal);
        }
    }

    private async Task<WebSession> SessionAsync(bool admin)
    {
        var email = $"{(admin ? "admin" : "user")}-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, Password, admin: admin);
        var session = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync(email, Password)).StatusCode);
        return session;
    }

    [GeneratedRegex("<tr data-testid=\"org-row\".*?</tr>", RegexOptions.Singleline)]
    private static partial Regex OrgRow();

    [GeneratedRegex("<tr data-testid=\"member-row\">.*?</tr>", RegexOptions.Singleline)]
    private static partial Regex MemberRow();

    [GeneratedRegex("<tr data-testid=\"membership-row\" data-org-id=\"([0-9a-f-]+)\">.*?</tr>", RegexOptions.Singleline)]
    private static partial Regex MembershipRow();

    [GeneratedRegex("<tr data-testid=\"key-row\" data-org-id=\"([0-9a-f-]+)\">.*?</tr>", RegexOptions.Singleline)]
    private static partial Regex KeyRow();
}
