using System.Net;
using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Team;

/// <summary>
/// The team page over HTTP, signed in through the real login form (issue 17): each handler does its change (and its
/// audit entry) for the roles the matrix allows, and refuses the others without changing anything.
/// </summary>
public sealed class IndexTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Signed_out_visitor_is_sent_to_log_in()
    {
        using var anonymous = app.NewSession();
        var response = await anonymous.GetAsync("/organization");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/Account/Login", response.Headers.Location?.AbsolutePath);
    }

    [Fact]
    public async Task Owner_invites_by_email_the_link_token_is_stored_only_as_its_hash_and_the_invitation_is_listed()
    {
        var (ownerId, ownerEmail, owner) = await app.UserAsync("owner");
        var invitee = $"invitee-{Guid.NewGuid():N}@example.com";

        var html = await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = $"  {invitee.ToUpperInvariant()} ", ["inviteRole"] = "admin" });

        Assert.StartsWith($"Invited {invitee.ToUpperInvariant()} as admin", TeamSteps.StatusOn(html));
        var invitation = Assert.Single(await app.InvitationsAsync(ownerId));
        Assert.Equal((OrgRole.Admin, invitee.ToUpperInvariant(), ownerId), (invitation.Role, invitation.NormalizedEmail, invitation.InvitedBy!.Value));
        Assert.InRange(invitation.ExpiresAt - invitation.CreatedAt, TimeSpan.FromDays(7) - TimeSpan.FromSeconds(1), TimeSpan.FromDays(7));
        Assert.Contains($"data-invitation=\"{invitee.ToUpperInvariant()}\"", html, StringComparison.Ordinal);

        // The e-mail carries the token; the table holds only its SHA-256. Nobody has this address yet: no user id.
        var mail = Assert.Single(await app.MailToAsync(invitee.ToUpperInvariant()));
        Assert.Null(mail.UserId);
        Assert.Contains(ownerEmail, mail.TextBody, StringComparison.Ordinal);
        var token = await app.InviteTokenAsync(invitee.ToUpperInvariant());
        Assert.Equal(43, token.Length);   // 32 random bytes, Base64Url
        Assert.Equal(OrgInvitations.Hash(token), invitation.TokenHash);
        var row = await app.Database.ScalarAsync<string>($"select row_to_json(i)::text from organization_invitations i where id = '{invitation.Id}'");
        Assert.DoesNotContain(token, row!, StringComparison.Ordinal);
        Assert.Contains(await AuditAsync(ownerId), a => a.Action == "org.invite");
    }

    [Fact]
    public async Task Invitation_mail_to_an_existing_user_names_them_and_reinviting_revokes_the_earlier_link()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (inviteeId, inviteeEmail, _) = await app.UserAsync("known");

        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = inviteeEmail, ["inviteRole"] = "member" });
        var first = await app.InviteTokenAsync(inviteeEmail);
        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = inviteeEmail, ["inviteRole"] = "billing" });

        var mails = await app.MailToAsync(inviteeEmail);
        Assert.All(mails.Where(m => m.Kind == "organization-invite"), m => Assert.Equal(inviteeId, m.UserId));
        var invitations = await app.InvitationsAsync(ownerId);
        Assert.Equal(2, invitations.Count);
        Assert.NotNull(invitations[0].RevokedAt);
        Assert.Null(invitations[1].RevokedAt);
        Assert.Equal(OrgRole.Billing, invitations[1].Role);
        Assert.Equal(OrgInvitations.Hash(first), invitations[0].TokenHash);
    }

    [Fact]
    public async Task Inviting_a_member_an_owner_role_or_a_bad_address_is_refused()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (memberId, memberEmail, _) = await app.UserAsync("member");
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);

        Assert.Contains("already a member", TeamSteps.ErrorOn(await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = memberEmail, ["inviteRole"] = "member" })));
        Assert.Contains("Choose the role", TeamSteps.ErrorOn(await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = "x@example.com", ["inviteRole"] = "owner" })));
        Assert.Contains("Enter the e-mail", TeamSteps.ErrorOn(await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = "not an address", ["inviteRole"] = "member" })));
        Assert.Empty(await app.InvitationsAsync(ownerId));
    }

    [Fact]
    public async Task Seats_of_the_plan_limit_invitations_members_plus_pending()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");   // the Free plan: 3 seats, the owner uses one

        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = $"a-{Guid.NewGuid():N}@example.com", ["inviteRole"] = "member" });
        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = $"b-{Guid.NewGuid():N}@example.com", ["inviteRole"] = "member" });
        var refused = await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = $"c-{Guid.NewGuid():N}@example.com", ["inviteRole"] = "member" });

        Assert.Contains("The Free plan has 3 seats: 1 member and 2 pending invitations use 3.", TeamSteps.ErrorOn(refused));
        Assert.Equal(2, (await app.InvitationsAsync(ownerId)).Count);

        // Revoking one frees its seat.
        var pending = (await app.InvitationsAsync(ownerId))[0];
        Assert.StartsWith("Revoked the invitation", TeamSteps.StatusOn(await owner.PostAndReadAsync("RevokeInvitation", new() { ["id"] = pending.Id.ToString() })));
        Assert.NotNull((await app.InvitationsAsync(ownerId))[0].RevokedAt);
        Assert.StartsWith("Invited", TeamSteps.StatusOn(await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = $"d-{Guid.NewGuid():N}@example.com", ["inviteRole"] = "member" })));

        // On the Team plan there are 10.
        await SetPlanAsync(ownerId, "team");
        var page = WebUtility.HtmlDecode(await owner.TextAsync("/organization"));
        Assert.Contains("The Team plan has 10 seats", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_invitations_never_take_more_seats_than_the_plan_has()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");   // Free: 3 seats, the owner uses one
        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = $"first-{Guid.NewGuid():N}@example.com", ["inviteRole"] = "member" });
        var token = await owner.AntiforgeryTokenAsync("/organization");

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => owner.Http.PostAsync("/organization?handler=Invite",
            new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["inviteEmail"] = $"race{i}-{Guid.NewGuid():N}@example.com", ["inviteRole"] = "member", ["__RequestVerificationToken"] = token,
            }))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Redirect, r.StatusCode));
        var pending = (await app.InvitationsAsync(ownerId)).Count(i => i.RevokedAt is null);
        Assert.Equal(2, pending);
    }

    [Fact]
    public async Task Roles_without_the_permission_get_403_and_change_nothing()
    {
        var (ownerId, _, _) = await app.UserAsync("owner");
        var (memberId, _, member) = await app.UserAsync("member");
        var (adminId, _, admin) = await app.UserAsync("admin");
        var (billingId, _, billing) = await app.UserAsync("billing");
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);
        await app.AddMemberAsync(ownerId, adminId, OrgRole.Admin, makeCurrent: true);
        await app.AddMemberAsync(ownerId, billingId, OrgRole.Billing, makeCurrent: true);

        TeamSteps.AssertForbidden(await member.PostAsync("Invite", new() { ["inviteEmail"] = "x@example.com", ["inviteRole"] = "member" }));
        TeamSteps.AssertForbidden(await member.PostAsync("SetLimits", new() { ["userId"] = memberId.ToString(), ["requestsPerMinute"] = "1000" }));
        TeamSteps.AssertForbidden(await admin.PostAsync("Transfer", new() { ["userId"] = adminId.ToString() }));
        TeamSteps.AssertForbidden(await admin.PostAsync("Rename", new() { ["name"] = "Taken over" }));
        TeamSteps.AssertForbidden(await admin.PostAsync("Delete", new() { ["confirmName"] = "x" }));
        TeamSteps.AssertForbidden(await billing.PostAsync("Remove", new() { ["userId"] = memberId.ToString() }));
        TeamSteps.AssertForbidden(await billing.PostAsync("ChangeRole", new() { ["userId"] = memberId.ToString(), ["role"] = "admin" }));

        Assert.Empty(await app.InvitationsAsync(ownerId));
        Assert.Equal(OrgRole.Owner, (await app.MemberAsync(ownerId, ownerId))!.Role);
        Assert.Equal(OrgRole.Member, (await app.MemberAsync(ownerId, memberId))!.Role);
        Assert.Null((await app.MemberAsync(ownerId, memberId))!.RequestsPerMinute);

        // Members see the list, read-only: no invitation form, no actions.
        var page = await member.TextAsync("/organization");
        Assert.Contains("data-testid=\"members\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("handler=Invite", page, StringComparison.Ordinal);
        Assert.DoesNotContain("handler=Remove", page, StringComparison.Ordinal);
        Assert.DoesNotContain("handler=ChangeRole", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nobody_demotes_the_owner_or_makes_a_second_one_and_an_admin_changes_other_roles()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (adminId, _, admin) = await app.UserAsync("admin");
        var (memberId, _, _) = await app.UserAsync("member");
        await app.AddMemberAsync(ownerId, adminId, OrgRole.Admin, makeCurrent: true);
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);

        Assert.Contains("owner’s role cannot be changed", TeamSteps.ErrorOn(await admin.PostAndReadAsync("ChangeRole", new() { ["userId"] = ownerId.ToString(), ["role"] = "member" })));
        Assert.Contains("owner’s role cannot be changed", TeamSteps.ErrorOn(await owner.PostAndReadAsync("ChangeRole", new() { ["userId"] = ownerId.ToString(), ["role"] = "admin" })));
        Assert.Contains("one owner", TeamSteps.ErrorOn(await admin.PostAndReadAsync("ChangeRole", new() { ["userId"] = memberId.ToString(), ["role"] = "owner" })));
        Assert.Contains("The owner cannot be removed", TeamSteps.ErrorOn(await admin.PostAndReadAsync("Remove", new() { ["userId"] = ownerId.ToString() })));
        Assert.Equal(OrgRole.Owner, (await app.MemberAsync(ownerId, ownerId))!.Role);
        Assert.Equal(OrgRole.Member, (await app.MemberAsync(ownerId, memberId))!.Role);

        Assert.Contains("is now billing", TeamSteps.StatusOn(await admin.PostAndReadAsync("ChangeRole", new() { ["userId"] = memberId.ToString(), ["role"] = "billing" })));
        Assert.Equal(OrgRole.Billing, (await app.MemberAsync(ownerId, memberId))!.Role);
        var entry = Assert.Single(await AuditAsync(ownerId), a => a.Action == "org.member-role");
        Assert.Contains("\"billing\"", entry.After, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Limits_are_stored_in_micro_usd_shown_to_the_member_on_their_row_only_and_cleared_when_empty()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (memberId, memberEmail, member) = await app.UserAsync("member");
        var (otherId, _, _) = await app.UserAsync("other");
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);
        await app.AddMemberAsync(ownerId, otherId, OrgRole.Member, makeCurrent: true);

        Assert.Contains("2 decimals", TeamSteps.ErrorOn(await owner.PostAndReadAsync("SetLimits", new() { ["userId"] = memberId.ToString(), ["budgetUsd"] = "1.005" })));
        Assert.Contains("requests per minute", TeamSteps.ErrorOn(await owner.PostAndReadAsync("SetLimits", new() { ["userId"] = memberId.ToString(), ["requestsPerMinute"] = "-3" })));
        Assert.StartsWith("Saved the limits", TeamSteps.StatusOn(await owner.PostAndReadAsync("SetLimits", new()
        {
            ["userId"] = memberId.ToString(), ["budgetUsd"] = "25.50", ["requestsPerMinute"] = "30", ["tokensPerMinute"] = "40000",
        })));
        await owner.PostAndReadAsync("SetLimits", new() { ["userId"] = otherId.ToString(), ["budgetUsd"] = "99.00" });

        var saved = (await app.MemberAsync(ownerId, memberId))!;
        Assert.Equal((25_500_000L, 30, 40_000L), (saved.MonthlyBudgetMicros!.Value, saved.RequestsPerMinute!.Value, saved.TokensPerMinute!.Value));
        var page = WebUtility.HtmlDecode(await member.TextAsync("/organization"));
        Assert.Contains("$25.50", page, StringComparison.Ordinal);
        Assert.Contains("40,000", page, StringComparison.Ordinal);
        Assert.DoesNotContain("$99.00", page, StringComparison.Ordinal);   // another member's budget is not theirs to see
        Assert.Contains(memberEmail, page, StringComparison.Ordinal);

        await owner.PostAndReadAsync("SetLimits", new() { ["userId"] = memberId.ToString(), ["budgetUsd"] = "", ["requestsPerMinute"] = "", ["tokensPerMinute"] = "" });
        saved = (await app.MemberAsync(ownerId, memberId))!;
        Assert.Equal((null, null, null), (saved.MonthlyBudgetMicros, saved.RequestsPerMinute, saved.TokensPerMinute));
        Assert.Equal(3, (await AuditAsync(ownerId)).Count(a => a.Action == "org.member-limits"));
    }

    [Fact]
    public async Task A_limits_change_tells_every_instance_to_reload_the_organizations_keys_and_only_the_owner_caps_the_owner()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (adminId, _, admin) = await app.UserAsync("admin");
        await app.AddMemberAsync(ownerId, adminId, OrgRole.Admin, makeCurrent: true);
        await using var listener = new Npgsql.NpgsqlConnection(app.Database.ConnectionString);
        await listener.OpenAsync();
        var notices = new System.Collections.Concurrent.ConcurrentQueue<string>();
        listener.Notification += (_, e) => notices.Enqueue(e.Payload);
        await using (var listen = new Npgsql.NpgsqlCommand("listen aigate_cache", listener)) await listen.ExecuteNonQueryAsync();

        Assert.Contains("Only the owner", TeamSteps.ErrorOn(await admin.PostAndReadAsync("SetLimits", new() { ["userId"] = ownerId.ToString(), ["requestsPerMinute"] = "1" })));
        Assert.Null((await app.MemberAsync(ownerId, ownerId))!.RequestsPerMinute);
        await admin.PostAndReadAsync("SetLimits", new() { ["userId"] = adminId.ToString(), ["requestsPerMinute"] = "5" });
        await owner.PostAndReadAsync("SetLimits", new() { ["userId"] = ownerId.ToString(), ["tokensPerMinute"] = "7" });

        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (notices.Count(n => n == $"owner:{ownerId}") < 2 && !wait.IsCancellationRequested)
            await listener.WaitAsync(TimeSpan.FromMilliseconds(200));
        Assert.Equal(2, notices.Count(n => n == $"owner:{ownerId}"));
        Assert.Equal((5, 7L), ((await app.MemberAsync(ownerId, adminId))!.RequestsPerMinute!.Value, (await app.MemberAsync(ownerId, ownerId))!.TokensPerMinute!.Value));
    }

    [Fact]
    public async Task Removing_a_member_revokes_their_keys_in_that_organization_only()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (memberId, _, _) = await app.UserAsync("member");
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);
        var teamKey = await IssueAsync(ownerId, memberId);
        var ownKey = await IssueAsync(memberId, memberId);

        Assert.Contains("1 of their keys was revoked", TeamSteps.StatusOn(await owner.PostAndReadAsync("Remove", new() { ["userId"] = memberId.ToString() })));

        Assert.Null(await app.MemberAsync(ownerId, memberId));
        Assert.True(await RevokedAsync(teamKey));
        Assert.False(await RevokedAsync(ownKey));
        Assert.Contains(await AuditAsync(ownerId), a => a.Action == "org.member-remove");
    }

    [Fact]
    public async Task A_member_leaves_but_the_owner_cannot()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (memberId, _, member) = await app.UserAsync("member");
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);
        var key = await IssueAsync(ownerId, memberId);

        Assert.Contains("owner cannot leave", TeamSteps.ErrorOn(await owner.PostAndReadAsync("Leave")));
        var after = await member.PostAndReadAsync("Leave");

        Assert.StartsWith("You left", TeamSteps.StatusOn(after));
        Assert.Null(await app.MemberAsync(ownerId, memberId));
        Assert.True(await RevokedAsync(key));
        Assert.Equal(OrgRole.Owner, (await app.MemberAsync(ownerId, ownerId))!.Role);
    }

    [Fact]
    public async Task The_owner_renames_and_transfers_to_a_member_who_becomes_owner_while_they_become_admin()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (memberId, memberEmail, member) = await app.UserAsync("member");
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);
        var (strangerId, _, _) = await app.UserAsync("stranger");

        Assert.Contains("Give the organization a name", TeamSteps.ErrorOn(await owner.PostAndReadAsync("Rename", new() { ["name"] = "  " })));
        Assert.StartsWith("Renamed", TeamSteps.StatusOn(await owner.PostAndReadAsync("Rename", new() { ["name"] = " Acme Research " })));
        Assert.Equal("Acme Research", await app.Database.ScalarAsync<string>($"select name from organizations where id = '{ownerId}'"));

        Assert.Contains("only to a member", TeamSteps.ErrorOn(await owner.PostAndReadAsync("Transfer", new() { ["userId"] = strangerId.ToString() })));
        Assert.Contains($"{memberEmail} now owns", TeamSteps.StatusOn(await owner.PostAndReadAsync("Transfer", new() { ["userId"] = memberId.ToString() })));

        Assert.Equal(OrgRole.Owner, (await app.MemberAsync(ownerId, memberId))!.Role);
        Assert.Equal(OrgRole.Admin, (await app.MemberAsync(ownerId, ownerId))!.Role);
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from organization_members where org_id = '{ownerId}' and role = 'owner'"));
        // The old owner lost the owner's powers; the new one has them.
        TeamSteps.AssertForbidden(await owner.PostAsync("Transfer", new() { ["userId"] = ownerId.ToString() }));
        Assert.Contains("data-testid=\"my-role\">owner<", await member.TextAsync("/organization"), StringComparison.Ordinal);
        var actions = (await AuditAsync(ownerId)).Select(a => a.Action).ToList();
        Assert.Contains("org.rename", actions);
        Assert.Contains("org.transfer", actions);
    }

    [Fact]
    public async Task New_organization_is_created_owned_and_current_and_is_deleted_only_without_money()
    {
        var (userId, _, session) = await app.UserAsync("founder");

        Assert.StartsWith("Created Skunkworks", TeamSteps.StatusOn(await session.PostAndReadAsync("Create", new() { ["newName"] = "Skunkworks" })));
        var orgId = await app.Database.ScalarAsync<Guid>($"select id from organizations where name = 'Skunkworks' and id <> '{userId}' and not personal and id in (select org_id from organization_members where user_id = '{userId}')");
        Assert.Equal(OrgRole.Owner, (await app.MemberAsync(orgId, userId))!.Role);
        Assert.Contains("data-testid=\"org-name\">Skunkworks<", await session.TextAsync("/organization"), StringComparison.Ordinal);

        // Credit on the account: refused, nothing deleted.
        await app.GrantAsync(orgId, 1_500_000);
        var refused = await session.PostAndReadAsync("Delete", new() { ["confirmName"] = "Skunkworks" });
        Assert.Contains("Skunkworks still has $1.50 of credit", TeamSteps.ErrorOn(refused));
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from organizations where id = '{orgId}'"));

        // Spent down to zero but with a live subscription: still refused.
        await app.Database.ExecuteAsync($"update credit_accounts set balance_micros = 0 where user_id = '{orgId}'");
        await SetPlanAsync(orgId, "team", subscription: "sub_live");
        Assert.Contains("live subscription", TeamSteps.ErrorOn(await session.PostAndReadAsync("Delete", new() { ["confirmName"] = "Skunkworks" })));

        await app.Database.ExecuteAsync($"update billing_accounts set subscription_status = 'canceled' where user_id = '{orgId}'");
        Assert.Contains("Type the organization’s name", TeamSteps.ErrorOn(await session.PostAndReadAsync("Delete", new() { ["confirmName"] = "skunk" })));
        Assert.StartsWith("Deleted Skunkworks", TeamSteps.StatusOn(await session.PostAndReadAsync("Delete", new() { ["confirmName"] = "Skunkworks" })));
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from organizations where id = '{orgId}'"));
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from audit_log where action = 'org.delete' and target = 'org:{orgId}'"));

        // The personal organization cannot be deleted here.
        Assert.Contains("personal organization", TeamSteps.ErrorOn(await session.PostAndReadAsync("Delete", new() { ["confirmName"] = "x" })));
    }

    private async Task SetPlanAsync(Guid orgId, string planId, string? subscription = null)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var account = await db.Set<BillingAccount>().FirstOrDefaultAsync(b => b.UserId == orgId);
        if (account is null) db.Add(account = new BillingAccount { UserId = orgId, PlanId = planId, UpdatedAt = DateTimeOffset.UtcNow });
        account.PlanId = planId;
        if (subscription is not null) (account.SubscriptionId, account.SubscriptionStatus) = (subscription, "active");
        await db.SaveChangesAsync();
    }

    private async Task<Guid> IssueAsync(Guid orgId, Guid creatorId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var (key, _) = await scope.ServiceProvider.GetRequiredService<AiGate.Web.Features.Keys.ApiKeyIssuer>()
            .IssueAsync(orgId, creatorId, "k", new AiGate.Web.Features.Keys.KeyLimits(), CancellationToken.None);
        return key.Id;
    }

    private async Task<bool> RevokedAsync(Guid keyId) =>
        await app.Database.ScalarAsync<bool>($"select revoked_at is not null from api_keys where id = '{keyId}'");

    private async Task<List<AuditEntry>> AuditAsync(Guid orgId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Set<AuditEntry>().AsNoTracking()
            .Where(a => a.Target == $"org:{orgId}").OrderBy(a => a.Id).ToListAsync();
    }
}
