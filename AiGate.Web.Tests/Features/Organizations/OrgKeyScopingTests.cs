using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Organizations;

/// <summary>
/// Whose keys a member of an organization reaches on <c>/keys</c> (issue 17), over HTTP as each member signs in: plain members
/// (and billing) only the keys they created, owners and admins every key of the organization, and nobody a key of an
/// organization other than the one they are working in. A key out of reach answers 404 and stays as it was.
/// </summary>
public sealed class OrgKeyScopingTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Members_list_only_their_own_keys_while_owners_and_admins_list_everyones_with_the_creator()
    {
        var team = await app.CreateTeamAsync("Listing", OrgRole.Owner, OrgRole.Admin, OrgRole.Billing, OrgRole.Member, OrgRole.Member);
        var names = new Dictionary<TeamMember, string>();
        foreach (var member in team.Members)
        {
            names[member] = $"key-of-{member.Role}-{Guid.NewGuid():N}";
            await app.IssueKeyAsync(team.OrgId, member.UserId, names[member]);
        }

        foreach (var viewer in team.Members)
        {
            var html = await viewer.Session.TextAsync("/keys");
            var seesAll = viewer.Role is OrgRole.Owner or OrgRole.Admin;
            foreach (var (creator, name) in names)
            {
                var listed = html.Contains(name, StringComparison.Ordinal);
                Assert.True(listed == (seesAll || creator == viewer), $"{viewer.Role} {(listed ? "sees" : "does not see")} {creator.Role}'s key");
                if (seesAll) Assert.Contains($"by {creator.Email}", html, StringComparison.Ordinal);
            }
            if (!seesAll) Assert.DoesNotContain("data-testid=\"key-creator\"", html, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_member_cannot_revoke_rename_or_rotate_another_members_key_and_nothing_changes()
    {
        var team = await app.CreateTeamAsync("Hands off", OrgRole.Owner, OrgRole.Member, OrgRole.Member, OrgRole.Billing);
        var (owner, intruder, victim, billing) = (team.Members[0], team.Members[1], team.Members[2], team.Members[3]);
        var victimKey = await app.IssueKeyAsync(team.OrgId, victim.UserId, "victim key");
        var ownerKey = await app.IssueKeyAsync(team.OrgId, owner.UserId, "owner key");

        foreach (var actor in new[] { intruder, billing })
            foreach (var (id, _) in new[] { victimKey, ownerKey })
            {
                var responses = new[]
                {
                    await Teams.PostAsync(actor.Session, "/keys?handler=Revoke", new Dictionary<string, string> { ["id"] = id.ToString() }),
                    await Teams.PostAsync(actor.Session, "/keys?handler=Rename", new Dictionary<string, string> { ["id"] = id.ToString(), ["Rename.Name"] = "stolen" }),
                    await Teams.PostAsync(actor.Session, "/keys?handler=Rename", new Dictionary<string, string> { ["id"] = id.ToString(), ["Rename.Name"] = "" }),
                    await Teams.PostAsync(actor.Session, "/keys?handler=Rotate", new Dictionary<string, string> { ["id"] = id.ToString(), ["grace"] = "now" }),
                };
                Assert.All(responses, r => Assert.Equal(HttpStatusCode.NotFound, r.StatusCode));
            }

        foreach (var (id, secret) in new[] { victimKey, ownerKey })
        {
            var key = await app.KeyAsync(id);
            Assert.NotEqual("stolen", key.Name);
            Assert.Null(key.RevokedAt);
            Assert.Null(key.ExpiresAt);
            Assert.Null(key.ReplacedById);
            Assert.Equal(HttpStatusCode.OK, (await ApiAsync(secret)).StatusCode);
        }
        Assert.Equal(2, await app.Database.ScalarAsync<long>($"select count(*) from api_keys where owner_id = '{team.OrgId}'"));
    }

    [Fact]
    public async Task An_admin_can_rename_rotate_and_revoke_a_members_key_and_the_rotated_key_stays_the_members()
    {
        var team = await app.CreateTeamAsync("Admin reach", OrgRole.Owner, OrgRole.Admin, OrgRole.Member);
        var (admin, member) = (team[OrgRole.Admin], team[OrgRole.Member]);
        var (id, secret) = await app.IssueKeyAsync(team.OrgId, member.UserId, "member key");
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(secret)).StatusCode);   // cached now

        var renamed = await Teams.PostAsync(admin.Session, "/keys?handler=Rename", new Dictionary<string, string> { ["id"] = id.ToString(), ["Rename.Name"] = "renamed by admin" });
        Assert.Equal(HttpStatusCode.Redirect, renamed.StatusCode);
        Assert.Equal("renamed by admin", (await app.KeyAsync(id)).Name);

        var rotated = await Teams.PostAsync(admin.Session, "/keys?handler=Rotate", new Dictionary<string, string> { ["id"] = id.ToString(), ["grace"] = "1h" });
        Assert.Equal(HttpStatusCode.Redirect, rotated.StatusCode);
        var newId = (await app.KeyAsync(id)).ReplacedById ?? throw new InvalidOperationException("not rotated");
        var replacement = await app.KeyAsync(newId);
        Assert.Equal((team.OrgId, member.UserId), (replacement.OwnerId, replacement.CreatedBy));
        Assert.Contains("renamed by admin", await member.Session.TextAsync("/keys"), StringComparison.Ordinal);

        var revoked = await Teams.PostAsync(admin.Session, "/keys?handler=Revoke", new Dictionary<string, string> { ["id"] = id.ToString() });
        Assert.Equal(HttpStatusCode.Redirect, revoked.StatusCode);
        Assert.NotNull((await app.KeyAsync(id)).RevokedAt);
        await AssertRefusedSoonAsync(secret);
    }

    [Fact]
    public async Task A_key_of_one_organization_is_never_listed_or_touched_from_another()
    {
        // The same person is admin of A and owner of B: what they reach follows the organization they work in.
        var a = await app.CreateTeamAsync("Org A", OrgRole.Owner);
        var b = await app.CreateTeamAsync("Org B", OrgRole.Owner);
        var person = b[OrgRole.Owner];
        await app.AddMemberAsync(a.OrgId, person.UserId, OrgRole.Admin, makeCurrent: false);
        var keyOfA = await app.IssueKeyAsync(a.OrgId, a[OrgRole.Owner].UserId, $"a-key-{Guid.NewGuid():N}");
        var ownKeyInA = await app.IssueKeyAsync(a.OrgId, person.UserId, $"mine-in-a-{Guid.NewGuid():N}");
        var keyOfB = await app.IssueKeyAsync(b.OrgId, person.UserId, $"b-key-{Guid.NewGuid():N}");
        var nameOfA = (await app.KeyAsync(keyOfA.Id)).Name;
        var mineInA = (await app.KeyAsync(ownKeyInA.Id)).Name;
        var nameOfB = (await app.KeyAsync(keyOfB.Id)).Name;

        var inB = await person.Session.TextAsync("/keys");
        Assert.Contains(nameOfB, inB, StringComparison.Ordinal);
        Assert.DoesNotContain(nameOfA, inB, StringComparison.Ordinal);
        Assert.DoesNotContain(mineInA, inB, StringComparison.Ordinal);   // created by them, but not B's
        foreach (var (id, _) in new[] { keyOfA, ownKeyInA })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await Teams.PostAsync(person.Session, "/keys?handler=Revoke", new Dictionary<string, string> { ["id"] = id.ToString() })).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await Teams.PostAsync(person.Session, "/keys?handler=Rename", new Dictionary<string, string> { ["id"] = id.ToString(), ["Rename.Name"] = "x" })).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await Teams.PostAsync(person.Session, "/keys?handler=Rotate", new Dictionary<string, string> { ["id"] = id.ToString(), ["grace"] = "now" })).StatusCode);
            var key = await app.KeyAsync(id);
            Assert.Null(key.RevokedAt);
            Assert.Null(key.ReplacedById);
            Assert.StartsWith(id == keyOfA.Id ? "a-key-" : "mine-in-a-", key.Name, StringComparison.Ordinal);
        }
        // A's owner, working in A, cannot reach B's key either.
        Assert.Equal(HttpStatusCode.NotFound, (await Teams.PostAsync(a[OrgRole.Owner].Session, "/keys?handler=Revoke", new Dictionary<string, string> { ["id"] = keyOfB.Id.ToString() })).StatusCode);
        Assert.DoesNotContain(nameOfB, await a[OrgRole.Owner].Session.TextAsync("/keys"), StringComparison.Ordinal);
        Assert.Null((await app.KeyAsync(keyOfB.Id)).RevokedAt);

        // Switched to A through the switcher, the same person lists A's keys (not B's) and, as its admin, may revoke them.
        var token = await person.Session.AntiforgeryTokenAsync("/keys");
        var switched = await person.Session.Http.PostAsync("/organization/switch", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["org"] = a.OrgId.ToString(), ["returnUrl"] = "/keys",
        }));
        Assert.Equal(HttpStatusCode.Redirect, switched.StatusCode);
        var inA = await person.Session.TextAsync("/keys");
        Assert.Contains(nameOfA, inA, StringComparison.Ordinal);
        Assert.Contains(mineInA, inA, StringComparison.Ordinal);
        Assert.DoesNotContain(nameOfB, inA, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await Teams.PostAsync(person.Session, "/keys?handler=Revoke", new Dictionary<string, string> { ["id"] = keyOfB.Id.ToString() })).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await Teams.PostAsync(person.Session, "/keys?handler=Revoke", new Dictionary<string, string> { ["id"] = keyOfA.Id.ToString() })).StatusCode);
        Assert.NotNull((await app.KeyAsync(keyOfA.Id)).RevokedAt);
        Assert.Null((await app.KeyAsync(keyOfB.Id)).RevokedAt);
    }

    [Fact]
    public async Task Switching_to_an_organization_one_is_not_a_member_of_is_refused_and_changes_nothing()
    {
        var a = await app.CreateTeamAsync("Closed", OrgRole.Owner);
        var outsider = (await app.CreateTeamAsync("Outside", OrgRole.Owner))[OrgRole.Owner];
        var token = await outsider.Session.AntiforgeryTokenAsync("/keys");

        var switched = await outsider.Session.Http.PostAsync("/organization/switch", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["org"] = a.OrgId.ToString(), ["returnUrl"] = "/keys",
        }));

        Assert.Equal(HttpStatusCode.NotFound, switched.StatusCode);
        Assert.DoesNotContain("Closed", await outsider.Session.TextAsync("/keys"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_works_only_while_its_creator_is_a_member_and_nobody_over_it_is_suspended()
    {
        var team = await app.CreateTeamAsync("Gatekeeping", OrgRole.Owner, OrgRole.Member, OrgRole.Member);
        var (owner, leaver, stayer) = (team.Members[0], team.Members[1], team.Members[2]);
        var leaverKey = await app.IssueKeyAsync(team.OrgId, leaver.UserId, "leaver");
        var stayerKey = await app.IssueKeyAsync(team.OrgId, stayer.UserId, "stayer");

        // Removed from the team (the row only, no notice, never used so never cached): the key no longer loads.
        await app.Database.ExecuteAsync($"delete from organization_members where org_id = '{team.OrgId}' and user_id = '{leaver.UserId}'");
        Assert.Equal(HttpStatusCode.Unauthorized, (await ApiAsync(leaverKey.Secret)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(stayerKey.Secret)).StatusCode);

        // The owner suspended by an operator (who publishes owner:{id}): every member's key of the team stops, cached or not.
        await app.Database.ExecuteAsync($"update users set suspended_at = now() where id = '{owner.UserId}'; select pg_notify('aigate_cache', 'owner:{owner.UserId}')");
        await AssertStatusSoonAsync(stayerKey.Secret, HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_member_is_told_on_their_pages_when_the_organizations_owner_is_suspended()
    {
        var team = await app.CreateTeamAsync("Frozen Co", OrgRole.Owner, OrgRole.Member);
        var (owner, member) = (team.Members[0], team.Members[1]);
        Assert.DoesNotContain("data-testid=\"org-suspended\"", await member.Session.TextAsync("/keys"), StringComparison.Ordinal);

        await app.Database.ExecuteAsync($"update users set suspended_at = now(), suspension_reason = 'unpaid invoices' where id = '{owner.UserId}'");

        var keys = await member.Session.TextAsync("/keys");
        Assert.Contains("data-testid=\"org-suspended\"", keys, StringComparison.Ordinal);
        Assert.Contains("Frozen Co", keys, StringComparison.Ordinal);
        // The reason is between the operator and the owner; the member is told what it means for their keys.
        Assert.DoesNotContain("unpaid invoices", keys, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"org-suspended\"", await member.Session.TextAsync("/dashboard"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoking_a_members_keys_stops_them_on_the_cache_and_leaves_the_others()
    {
        var team = await app.CreateTeamAsync("Offboarding", OrgRole.Owner, OrgRole.Member, OrgRole.Member);
        var (leaver, stayer) = (team.Members[1], team.Members[2]);
        var first = await app.IssueKeyAsync(team.OrgId, leaver.UserId, "one");
        var second = await app.IssueKeyAsync(team.OrgId, leaver.UserId, "two");
        var personal = await app.IssueKeyAsync(leaver.UserId, leaver.UserId, "their own");   // their personal organization's
        var kept = await app.IssueKeyAsync(team.OrgId, stayer.UserId, "kept");
        foreach (var key in new[] { first, second, personal, kept })
            Assert.Equal(HttpStatusCode.OK, (await ApiAsync(key.Secret)).StatusCode);   // all cached now

        int revoked;
        await using (var scope = app.Services.CreateAsyncScope())
            revoked = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().RevokeMemberKeysAsync(team.OrgId, leaver.UserId, CancellationToken.None);

        Assert.Equal(2, revoked);
        await AssertRefusedSoonAsync(first.Secret);
        await AssertRefusedSoonAsync(second.Secret);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(personal.Secret)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(kept.Secret)).StatusCode);
    }

    [Fact]
    public async Task Removed_from_the_current_organization_one_works_in_ones_personal_one_from_the_next_request()
    {
        var team = await app.CreateTeamAsync("Left behind", OrgRole.Owner, OrgRole.Member);
        var member = team[OrgRole.Member];
        var teamKey = $"team-{Guid.NewGuid():N}";
        var personalKey = $"personal-{Guid.NewGuid():N}";
        await app.IssueKeyAsync(team.OrgId, member.UserId, teamKey);
        await app.IssueKeyAsync(member.UserId, member.UserId, personalKey);
        var inTeam = await member.Session.TextAsync("/keys");
        Assert.Contains(teamKey, inTeam, StringComparison.Ordinal);
        Assert.DoesNotContain(personalKey, inTeam, StringComparison.Ordinal);
        Assert.Equal("/Account/AccessDenied", Teams.RedirectPath(await member.Session.GetAsync("/billing")));   // a member of the team

        await app.Database.ExecuteAsync($"delete from organization_members where org_id = '{team.OrgId}' and user_id = '{member.UserId}'");

        var alone = await member.Session.TextAsync("/keys");
        Assert.Contains(personalKey, alone, StringComparison.Ordinal);
        Assert.DoesNotContain(teamKey, alone, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await member.Session.GetAsync("/billing")).StatusCode);   // the owner of their own
    }

    private async Task<HttpResponseMessage> ApiAsync(string secret)
    {
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return await client.GetAsync("/api/v1/models");
    }

    private Task AssertRefusedSoonAsync(string secret) => AssertStatusSoonAsync(secret, HttpStatusCode.Unauthorized);

    /// <summary>The key is answered <paramref name="expected"/> within two seconds (a cache notice, not the cache's expiry).</summary>
    private async Task AssertStatusSoonAsync(string secret, HttpStatusCode expected)
    {
        var since = Stopwatch.StartNew();
        HttpStatusCode status;
        while ((status = (await ApiAsync(secret)).StatusCode) == HttpStatusCode.OK && since.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        Assert.Equal(expected, status);
        Assert.True(since.Elapsed < TimeSpan.FromSeconds(2), $"the key was accepted for {since.Elapsed.TotalMilliseconds:0} ms");
    }
}
