using System.Net;
using AiGate.Web.Data;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Team;

/// <summary>
/// The invitation link (issue 17): a visitor is sent to log in or sign up and comes back; only the invited, confirmed
/// address accepts, once, before expiry and revocation, and only while a seat is free.
/// </summary>
public sealed class InviteTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task A_visitor_sees_the_organization_signs_up_from_the_link_confirms_logs_in_and_accepts()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        await owner.PostAndReadAsync("Rename", new() { ["name"] = "Acme" });
        var invitee = $"newcomer-{Guid.NewGuid():N}@example.com";
        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = invitee, ["inviteRole"] = "billing" });
        var link = await app.LinkInMailAsync(invitee, "organization-invite");

        using var visitor = app.NewSession();
        var page = WebUtility.HtmlDecode(await visitor.TextAsync(link));
        Assert.Contains("Join Acme", page, StringComparison.Ordinal);
        var returnUrl = Uri.EscapeDataString(link);
        Assert.Contains($"/Account/Register?returnUrl={returnUrl}", page, StringComparison.Ordinal);
        Assert.Contains($"/Account/Login?returnUrl={returnUrl}", page, StringComparison.Ordinal);

        // Sign up with the way back; the confirmation mail carries it; logging in after confirming leads to the invitation.
        var registered = await visitor.SubmitAsync($"/Account/Register?returnUrl={returnUrl}",
            new() { ["Input.Email"] = invitee, ["Input.Password"] = TeamOrgs.Password, ["Input.ConfirmPassword"] = TeamOrgs.Password });
        Assert.Equal(HttpStatusCode.Redirect, registered.StatusCode);
        var confirmed = WebUtility.HtmlDecode(await visitor.TextAsync(await app.LinkInMailAsync(invitee, "confirm-email")));
        Assert.Contains("E-mail confirmed", confirmed, StringComparison.Ordinal);
        Assert.Contains($"/Account/Login?returnUrl={returnUrl}", confirmed, StringComparison.Ordinal);
        var login = await visitor.SubmitAsync($"/Account/Login?returnUrl={returnUrl}", new() { ["Input.Email"] = invitee, ["Input.Password"] = TeamOrgs.Password });
        Assert.Equal(link, login.Headers.Location?.OriginalString);

        var accepted = await visitor.AcceptAsync(await app.InviteTokenAsync(invitee));

        Assert.Equal("/organization", accepted.Headers.Location?.OriginalString);
        var team = WebUtility.HtmlDecode(await visitor.TextAsync("/organization"));
        Assert.Contains("Welcome to Acme: you joined as billing.", team, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"org-name\">Acme<", team, StringComparison.Ordinal);
        var user = await app.FindUserAsync(invitee);
        Assert.Equal(OrgRole.Billing, (await app.MemberAsync(ownerId, user!.Id))!.Role);
        Assert.Equal(user.Id, (await app.InvitationsAsync(ownerId)).Single().AcceptedBy);
    }

    [Fact]
    public async Task Posting_the_acceptance_signed_out_goes_to_log_in_and_changes_nothing()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var invitee = $"x-{Guid.NewGuid():N}@example.com";
        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = invitee, ["inviteRole"] = "member" });
        var token = await app.InviteTokenAsync(invitee);
        using var visitor = app.NewSession();
        var antiforgery = await visitor.AntiforgeryTokenAsync("/Account/Login");

        var response = await visitor.Http.PostAsync("/organization/invite", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = token, ["__RequestVerificationToken"] = antiforgery,
        }));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/Account/Login?", response.Headers.Location?.OriginalString);
        Assert.Null((await app.InvitationsAsync(ownerId)).Single().AcceptedAt);
    }

    [Fact]
    public async Task Another_address_cannot_accept()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (_, invitedEmail, _) = await app.UserAsync("invited");
        var (intruderId, intruderEmail, intruder) = await app.UserAsync("intruder");
        await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = invitedEmail, ["inviteRole"] = "admin" });

        var token = await app.InviteTokenAsync(invitedEmail);
        var shown = WebUtility.HtmlDecode(await intruder.TextAsync($"/organization/invite?token={token}"));
        Assert.Contains($"sent to another e-mail address than yours ({intruderEmail})", shown, StringComparison.Ordinal);
        Assert.DoesNotContain("invite-accept", shown, StringComparison.Ordinal);

        var response = await intruder.AcceptAsync(token);   // the POST itself, as a hand-made request would send it

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains($"sent to another e-mail address than yours ({intruderEmail})", WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        Assert.Null(await app.MemberAsync(ownerId, intruderId));
        Assert.Null((await app.InvitationsAsync(ownerId)).Single().AcceptedAt);
    }

    [Fact]
    public async Task Expired_revoked_reused_and_unknown_links_are_refused_with_a_clear_message()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (expiredId, expiredEmail, expired) = await app.UserAsync("expired");
        var (revokedId, revokedEmail, revoked) = await app.UserAsync("revoked");
        var (usedId, usedEmail, used) = await app.UserAsync("used");
        await SetPlanAsync(ownerId, "team");   // four seats are needed
        foreach (var email in new[] { expiredEmail, revokedEmail, usedEmail })
            await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = email, ["inviteRole"] = "member" });
        var invitations = await app.InvitationsAsync(ownerId);

        await app.Database.ExecuteAsync($"update organization_invitations set expires_at = now() - interval '1 minute' where id = '{invitations[0].Id}'");
        var expiredPage = WebUtility.HtmlDecode(await (await expired.AcceptAsync(await app.InviteTokenAsync(expiredEmail))).Content.ReadAsStringAsync());
        Assert.Contains("This invitation expired on", expiredPage, StringComparison.Ordinal);
        Assert.Null(await app.MemberAsync(ownerId, expiredId));

        await owner.PostAndReadAsync("RevokeInvitation", new() { ["id"] = invitations[1].Id.ToString() });
        var revokedPage = WebUtility.HtmlDecode(await (await revoked.AcceptAsync(await app.InviteTokenAsync(revokedEmail))).Content.ReadAsStringAsync());
        Assert.Contains("This invitation was withdrawn", revokedPage, StringComparison.Ordinal);
        Assert.Null(await app.MemberAsync(ownerId, revokedId));

        var usedToken = await app.InviteTokenAsync(usedEmail);
        Assert.Equal(HttpStatusCode.Redirect, (await used.AcceptAsync(usedToken)).StatusCode);
        await owner.PostAndReadAsync("Remove", new() { ["userId"] = usedId.ToString() });   // out again: the link must not bring them back
        var reusedPage = WebUtility.HtmlDecode(await (await used.AcceptAsync(usedToken)).Content.ReadAsStringAsync());
        Assert.Contains("This invitation has already been used", reusedPage, StringComparison.Ordinal);
        Assert.Null(await app.MemberAsync(ownerId, usedId));

        var unknown = WebUtility.HtmlDecode(await used.TextAsync("/organization/invite?token=not-a-real-token"));
        Assert.Contains("This invitation link is not valid", unknown, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Accepting_is_refused_when_the_plan_no_longer_has_the_seat()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        await SetPlanAsync(ownerId, "team");   // 10 seats
        var invitees = new List<(Guid Id, string Email, WebSession Session)>();
        for (var i = 0; i < 3; i++)
        {
            var invitee = await app.UserAsync($"seat{i}");
            invitees.Add(invitee);
            await owner.PostAndReadAsync("Invite", new() { ["inviteEmail"] = invitee.Email, ["inviteRole"] = "member" });
        }
        // The subscription lapsed: back on the Free plan's 3 seats, with 1 member and 3 pending invitations.
        await SetPlanAsync(ownerId, "free");

        var page = WebUtility.HtmlDecode(await (await invitees[0].Session.AcceptAsync(await app.InviteTokenAsync(invitees[0].Email))).Content.ReadAsStringAsync());

        Assert.Contains("The Free plan has 3 seats: 1 member and 3 pending invitations use 4.", page, StringComparison.Ordinal);
        Assert.Null(await app.MemberAsync(ownerId, invitees[0].Id));

        // Once a pending invitation is revoked, the count fits again and the acceptance goes through.
        var last = (await app.InvitationsAsync(ownerId)).Last();
        await owner.PostAndReadAsync("RevokeInvitation", new() { ["id"] = last.Id.ToString() });
        Assert.Equal(HttpStatusCode.Redirect, (await invitees[0].Session.AcceptAsync(await app.InviteTokenAsync(invitees[0].Email))).StatusCode);
        Assert.Equal(OrgRole.Member, (await app.MemberAsync(ownerId, invitees[0].Id))!.Role);
    }

    private async Task SetPlanAsync(Guid orgId, string planId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var account = await db.Set<BillingAccount>().FirstOrDefaultAsync(b => b.UserId == orgId);
        if (account is null) db.Add(new BillingAccount { UserId = orgId, PlanId = planId, UpdatedAt = DateTimeOffset.UtcNow });
        else account.PlanId = planId;
        await db.SaveChangesAsync();
    }
}
