using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Npgsql;

namespace AiGate.Web.Tests.Features.Organizations;

/// <summary>
/// Deleting an account with organizations (<c>/Account/Manage/Delete</c>, issue 17): refused while the person owns a team with
/// other members; otherwise the organizations they own alone go with their balances and keys, the teams they were a member of
/// stay as they were, and the keys they created there stop at once.
/// </summary>
public sealed class OrgAccountDeletionTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task The_owner_of_a_team_with_other_members_cannot_delete_their_account()
    {
        var team = await app.CreateTeamAsync($"Shared {Guid.NewGuid():N}", OrgRole.Owner, OrgRole.Member);
        var owner = team[OrgRole.Owner];
        await app.GrantAsync(team.OrgId, 3_000_000);

        var answer = await DeleteAsync(owner);

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains($"You own {team.Name}, which has other members", WebUtility.HtmlDecode(await answer.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from users where id = '{owner.UserId}'"));
        Assert.Equal(2L, await app.Database.ScalarAsync<long>($"select count(*) from organizations where id in ('{owner.UserId}', '{team.OrgId}')"));
        Assert.Equal(3_000_000, await app.Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{team.OrgId}'"));
    }

    [Fact]
    public async Task Deleting_removes_what_the_person_owns_alone_keeps_their_teams_and_stops_their_team_keys_at_once()
    {
        var team = await app.CreateTeamAsync($"Stays {Guid.NewGuid():N}", OrgRole.Owner, OrgRole.Member);
        var member = team[OrgRole.Member];
        var solo = await app.CreateTeamAsync($"Solo {Guid.NewGuid():N}", OrgRole.Owner);   // someone else's, to be joined as its owner below
        await app.Database.ExecuteAsync($"update organization_members set user_id = '{member.UserId}' where org_id = '{solo.OrgId}'");
        await app.GrantAsync(team.OrgId, 5_000_000);
        await app.GrantAsync(member.UserId, 1_000_000);   // their personal organization's balance (forfeited)
        await app.GrantAsync(solo.OrgId, 2_000_000);
        var teamKey = await app.IssueKeyAsync(team.OrgId, member.UserId, "member's team key");
        var ownerKey = await app.IssueKeyAsync(team.OrgId, team[OrgRole.Owner].UserId, "owner's key");
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(teamKey.Secret)).StatusCode);   // cached now

        var answer = await DeleteAsync(member);

        Assert.Equal(HttpStatusCode.Redirect, answer.StatusCode);
        Assert.Equal("/Account/Deleted", Teams.RedirectPath(answer));
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from users where id = '{member.UserId}'"));
        // What they owned alone is gone, with its balance; the team and its balance are as they were.
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from organizations where id in ('{member.UserId}', '{solo.OrgId}')"));
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from credit_accounts where user_id in ('{member.UserId}', '{solo.OrgId}')"));
        Assert.Equal(5_000_000, await app.Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{team.OrgId}'"));
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from organization_members where org_id = '{team.OrgId}'"));
        // The key they made in the team stops at once (not when the cache entry expires), the owner's goes on.
        var since = Stopwatch.StartNew();
        HttpStatusCode status;
        while ((status = (await ApiAsync(teamKey.Secret)).StatusCode) == HttpStatusCode.OK && since.Elapsed < TimeSpan.FromSeconds(20))
            await Task.Delay(20);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.True(since.Elapsed < TimeSpan.FromSeconds(2), $"the deleted member's key was accepted for {since.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(ownerKey.Secret)).StatusCode);
    }

    [Fact]
    public async Task Someone_joining_while_the_owner_deletes_their_account_is_not_deleted_with_the_organization()
    {
        var owner = (await app.CreateTeamAsync($"Joined {Guid.NewGuid():N}", OrgRole.Owner))[OrgRole.Owner];
        var joinerEmail = $"joiner-{Guid.NewGuid():N}@example.com";
        var joiner = await app.CreateUserAsync(joinerEmail, TeamOrgs.Password);
        var token = await owner.Session.AntiforgeryTokenAsync("/Account/Manage/Delete");

        // The joiner's membership of the owner's personal organization is written but not committed yet (an invitation being accepted).
        await using var connection = new NpgsqlConnection(app.Database.ConnectionString);
        await connection.OpenAsync();
        await using var joining = await connection.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand(
            $"insert into organization_members (org_id, user_id, role, joined_at) values ('{owner.UserId}', '{joiner.Id}', 'member', now())", connection, joining))
            await insert.ExecuteNonQueryAsync();
        var deleting = owner.Session.Http.PostAsync("/Account/Manage/Delete", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["Input.Password"] = TeamOrgs.Password, ["Input.Understood"] = "true",
        }));
        await Task.Delay(1000);
        await joining.CommitAsync();
        var answer = await deleting;

        // Either order is fine as long as the organization and its new member are never both gone while the member lives on.
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from organization_members where org_id = '{owner.UserId}' and user_id = '{joiner.Id}'"));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains("which has other members", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from users where id = '{owner.UserId}'"));
    }

    private static async Task<HttpResponseMessage> DeleteAsync(TeamMember who) =>
        await who.Session.SubmitAsync("/Account/Manage/Delete", new() { ["Input.Password"] = TeamOrgs.Password, ["Input.Understood"] = "true" });

    private async Task<HttpResponseMessage> ApiAsync(string secret)
    {
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return await client.GetAsync("/api/v1/models");
    }
}
