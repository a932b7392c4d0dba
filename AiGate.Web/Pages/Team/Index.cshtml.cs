using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Claims;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Team;

/// <summary>
/// The current organization's team (issue 17): members with their roles and caps, pending invitations, and the
/// changes each role may make (<see cref="OrgRoles.Allows"/>; every handler names the permission it needs and the
/// <see cref="OrgPageFilter"/> answers 403 without it). The owner is never demoted, removed or given a second owner:
/// ownership moves only by a transfer. Every change is written to the audit log in the transaction that makes it.
/// Mistakes come back as a message after the redirect (Post-Redirect-Get), never as a changed row.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.UseOwnKeys)]
public sealed class IndexModel(AppDbContext db, OrgContext orgs, OrgInvitations invitations, ApiKeyIssuer issuer, AuditLog audit,
    IOptions<EmailOptions> email, TimeProvider clock) : PageModel
{
    public CurrentOrganization Org => orgs.Current;
    public IReadOnlyList<MemberRow> Members { get; private set; } = [];
    public IReadOnlyList<InvitationRow> Invitations { get; private set; } = [];
    public SeatUse? Seats { get; private set; }

    [TempData] public string? StatusMessage { get; set; }
    [TempData] public string? ErrorMessage { get; set; }

    /// <summary>The roles an invitation or a role change may give (the owner's is only ever transferred).</summary>
    public static readonly IReadOnlyList<OrgRole> AssignableRoles = [OrgRole.Member, OrgRole.Billing, OrgRole.Admin];

    public async Task OnGetAsync(CancellationToken ct)
    {
        Response.Headers.CacheControl = "no-store";
        Members = await (from m in db.Set<OrgMember>().AsNoTracking()
                         join u in db.Users on m.UserId equals u.Id
                         where m.OrgId == Org.Id
                         orderby m.JoinedAt
                         select new MemberRow(m.UserId, u.Email ?? "", m.Role, m.JoinedAt, m.MonthlyBudgetMicros, m.RequestsPerMinute, m.TokensPerMinute))
            .ToListAsync(ct);
        if (Org.Can(OrgPermission.ManageMembers))
        {
            var now = clock.GetUtcNow();
            Invitations = await db.Set<OrgInvitation>().AsNoTracking()
                .Where(i => i.OrgId == Org.Id && i.AcceptedAt == null && i.RevokedAt == null && i.ExpiresAt > now)
                .OrderBy(i => i.CreatedAt)
                .Select(i => new InvitationRow(i.Id, i.Email, i.Role, i.ExpiresAt)).ToListAsync(ct);
            Seats = await invitations.SeatsAsync(Org.Id, ct);
        }
    }

    [RequiresOrg(OrgPermission.ManageMembers)]
    public async Task<IActionResult> OnPostInviteAsync(string? inviteEmail, string? inviteRole, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(inviteEmail) || inviteEmail.Trim().Length > 256 || !new EmailAddressAttribute().IsValid(inviteEmail.Trim()))
            return Fail("Enter the e-mail address of the person to invite.");
        if (!OrgRoles.TryParse(inviteRole, out var role) || role == OrgRole.Owner)
            return Fail("Choose the role to invite as: member, billing or admin.");
        var outcome = await invitations.InviteAsync(Org, Actor, inviteEmail, role,
            token => AccountLinks.Absolute(Request, email.Value, $"{OrgInvitations.AcceptPath}?token={token}"), ct);
        if (!outcome.Ok) return Fail(outcome.Error!);
        return Done($"Invited {outcome.Invitation!.Email} as {OrgRoles.Name(role)}; the link works until {Format(outcome.Invitation.ExpiresAt)}.");
    }

    [RequiresOrg(OrgPermission.ManageMembers)]
    public async Task<IActionResult> OnPostRevokeInvitationAsync(Guid id, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var invitation = await db.Set<OrgInvitation>().FirstOrDefaultAsync(i => i.Id == id && i.OrgId == Org.Id, ct);
        if (invitation is null) return NotFound();
        if (!invitation.IsPending(now)) return Fail($"The invitation to {invitation.Email} is no longer pending.");
        invitation.RevokedAt = now;
        audit.Add(new AuditChange("org.invitation-revoke", OrgInvitations.Target(Org.Id), Detail: invitation.Email));
        await db.SaveChangesAsync(ct);
        return Done($"Revoked the invitation to {invitation.Email}: its link no longer works.");
    }

    [RequiresOrg(OrgPermission.ManageMembers)]
    public async Task<IActionResult> OnPostChangeRoleAsync(Guid userId, string? role, CancellationToken ct)
    {
        if (!OrgRoles.TryParse(role, out var newRole)) return Fail("Choose a role: member, billing or admin.");
        if (newRole == OrgRole.Owner) return Fail("An organization has one owner; use “Transfer ownership” to hand it over.");
        await using var transaction = await BeginChangeAsync(OrgPermission.ManageMembers, ct);
        if (transaction is null) return Forbid();
        var member = await FindMemberAsync(userId, ct);
        if (member is null) return NotFound();
        if (member.Role == OrgRole.Owner) return Fail("The owner’s role cannot be changed; the owner can transfer ownership to another member.");
        var before = member.Role;
        if (before == newRole) return Done("Nothing to change.");
        member.Role = newRole;
        var who = await EmailOfAsync(userId, ct);
        audit.Add(new AuditChange("org.member-role", OrgInvitations.Target(Org.Id), new { member = who, role = OrgRoles.Name(before) },
            new { member = who, role = OrgRoles.Name(newRole) }));
        await db.SaveChangesAsync(ct);
        await NotifyOrgAsync(ct);
        await transaction.CommitAsync(ct);
        return Done($"{who} is now {OrgRoles.Name(newRole)}.");
    }

    [RequiresOrg(OrgPermission.ManageMembers)]
    public async Task<IActionResult> OnPostSetLimitsAsync(Guid userId, string? budgetUsd, string? requestsPerMinute, string? tokensPerMinute, CancellationToken ct)
    {
        long? budget = null;
        int? rpm = null;
        long? tpm = null;
        if (!string.IsNullOrWhiteSpace(budgetUsd))
        {
            if (!decimal.TryParse(budgetUsd.Trim(), NumberStyles.Number, CultureInfo.InvariantCulture, out var usd) || usd <= 0 || usd > 1_000_000)
                return Fail("Enter a monthly budget from 0.01 to 1,000,000 USD, or leave it empty for none.");
            if (decimal.Round(usd, 2) != usd) return Fail("Use at most 2 decimals for the monthly budget, e.g. 25.50.");
            budget = Money.FromUsd(usd);
        }
        if (!string.IsNullOrWhiteSpace(requestsPerMinute))
        {
            if (!int.TryParse(requestsPerMinute.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var r) || r is < 1 or > 1_000_000)
                return Fail("Enter requests per minute from 1 to 1,000,000, or leave it empty for none.");
            rpm = r;
        }
        if (!string.IsNullOrWhiteSpace(tokensPerMinute))
        {
            if (!long.TryParse(tokensPerMinute.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var t) || t is < 1 or > 1_000_000_000)
                return Fail("Enter tokens per minute from 1 to 1,000,000,000, or leave it empty for none.");
            tpm = t;
        }
        await using var transaction = await BeginChangeAsync(OrgPermission.ManageMembers, ct);
        if (transaction is null) return Forbid();
        var member = await FindMemberAsync(userId, ct);
        if (member is null) return NotFound();
        if (member.Role == OrgRole.Owner && member.UserId != Org.UserId) return Fail("Only the owner sets the owner’s own limits.");
        var before = Limits(member);
        member.MonthlyBudgetMicros = budget;
        member.RequestsPerMinute = rpm;
        member.TokensPerMinute = tpm;
        var who = await EmailOfAsync(userId, ct);
        audit.Add(new AuditChange("org.member-limits", OrgInvitations.Target(Org.Id), before, Limits(member), Detail: who));
        await db.SaveChangesAsync(ct);
        // Every instance reloads the organization's keys, which carry their creator's caps.
        await NotifyOrgAsync(ct);
        await transaction.CommitAsync(ct);
        return Done($"Saved the limits of {who}.");
    }

    [RequiresOrg(OrgPermission.ManageMembers)]
    public async Task<IActionResult> OnPostRemoveAsync(Guid userId, CancellationToken ct)
    {
        await using var transaction = await BeginChangeAsync(OrgPermission.ManageMembers, ct);
        if (transaction is null) return Forbid();
        var member = await FindMemberAsync(userId, ct);
        if (member is null) return NotFound();
        if (member.Role == OrgRole.Owner) return Fail("The owner cannot be removed; the owner can transfer ownership first.");
        if (userId == Org.UserId) return Fail("To go yourself, use “Leave organization”.");
        var who = await EmailOfAsync(userId, ct);
        var revoked = await RemoveAsync(member, "org.member-remove", who, ct);
        await transaction.CommitAsync(ct);
        return Done($"Removed {who}; {revoked} of their keys {(revoked == 1 ? "was" : "were")} revoked.");
    }

    public async Task<IActionResult> OnPostLeaveAsync(CancellationToken ct)
    {
        await using var transaction = await BeginChangeAsync(OrgPermission.UseOwnKeys, ct);
        if (transaction is null) return NotFound();
        var member = await FindMemberAsync(Org.UserId, ct);
        if (member is null) return NotFound();
        if (member.Role == OrgRole.Owner)
            return Fail("The owner cannot leave: transfer ownership to another member first, or delete the organization.");
        var name = Org.Name;
        await RemoveAsync(member, "org.member-leave", Actor, ct);
        await transaction.CommitAsync(ct);
        StatusMessage = $"You left {name}; your keys there were revoked.";
        return RedirectToPage();
    }

    [RequiresOrg(OrgPermission.RenameOrganization)]
    public async Task<IActionResult> OnPostRenameAsync(string? name, CancellationToken ct)
    {
        if (CheckName(name) is { } problem) return Fail(problem);
        var org = await db.Set<Organization>().FirstAsync(o => o.Id == Org.Id, ct);
        var before = org.Name;
        org.Name = name!.Trim();
        audit.Add(new AuditChange("org.rename", OrgInvitations.Target(Org.Id), new { name = before }, new { name = org.Name }));
        await db.SaveChangesAsync(ct);
        return Done($"Renamed the organization to “{org.Name}”.");
    }

    [RequiresOrg(OrgPermission.DeleteOrTransfer)]
    public async Task<IActionResult> OnPostTransferAsync(Guid userId, CancellationToken ct)
    {
        if (userId == Org.UserId) return Fail("You already own this organization.");
        await using var transaction = await BeginChangeAsync(OrgPermission.DeleteOrTransfer, ct);
        if (transaction is null) return Forbid();
        var successor = await FindMemberAsync(userId, ct);
        if (successor is null) return Fail("Ownership can go only to a member of the organization.");
        var owner = (await FindMemberAsync(Org.UserId, ct))!;
        var who = await EmailOfAsync(userId, ct);
        // Two steps, in this order: the partial unique index allows one owner per organization at every moment.
        owner.Role = OrgRole.Admin;
        await db.SaveChangesAsync(ct);
        var successorRole = successor.Role;
        successor.Role = OrgRole.Owner;
        audit.Add(new AuditChange("org.transfer", OrgInvitations.Target(Org.Id), new { owner = Actor, successorRole = OrgRoles.Name(successorRole) },
            new { owner = who, previousOwnerRole = "admin" }));
        await db.SaveChangesAsync(ct);
        // The keys carry their organization owner's suspension and rate overrides: every instance reloads them.
        await NotifyOrgAsync(ct);
        await transaction.CommitAsync(ct);
        return Done($"{who} now owns {Org.Name}; you are an admin.");
    }

    [RequiresOrg(OrgPermission.DeleteOrTransfer)]
    public async Task<IActionResult> OnPostDeleteAsync(string? confirmName, CancellationToken ct)
    {
        if (Org.Membership.Personal) return Fail("Your personal organization goes only with your account (Account › Delete account).");
        if (!string.Equals(confirmName?.Trim(), Org.Name, StringComparison.Ordinal))
            return Fail($"Type the organization’s name, {Org.Name}, to confirm the deletion.");

        await using var transaction = await BeginChangeAsync(OrgPermission.DeleteOrTransfer, ct);
        if (transaction is null) return Forbid();
        // Lock the balance row so no payment or settlement lands between the check and the delete.
        var account = await db.Set<CreditAccount>()
            .FromSql($"select * from credit_accounts where user_id = {Org.Id} for update").AsNoTracking().FirstOrDefaultAsync(ct);
        var leased = await db.Set<CreditLease>().Where(l => l.UserId == Org.Id).SumAsync(l => (long?)l.HeldMicros, ct) ?? 0;
        if (account is { BalanceMicros: > 0 } || account is { HeldMicros: > 0 } || leased > 0)
            return Fail($"{Org.Name} still has ${Money.UsdDisplay(Math.Max(0, account?.BalanceMicros ?? 0))} of credit" +
                ((account?.HeldMicros ?? 0) + leased > 0 ? " (part of it held by requests in flight)" : "") +
                ". Spend it or ask support for a refund before deleting the organization: its money would be lost.");
        var billingAccount = await db.Set<BillingAccount>().AsNoTracking().FirstOrDefaultAsync(b => b.UserId == Org.Id, ct);
        if (billingAccount is { HasLiveSubscription: true })
            return Fail($"{Org.Name} has a live subscription. Cancel it under Billing and wait for it to end before deleting the organization.");

        var orgId = Org.Id;
        var name = Org.Name;
        audit.Add(new AuditChange("org.delete", OrgInvitations.Target(orgId), new { name }, null));
        await db.SaveChangesAsync(ct);
        await db.Users.Where(u => u.CurrentOrgId == orgId).ExecuteUpdateAsync(s => s.SetProperty(u => u.CurrentOrgId, (Guid?)null), ct);
        // Keys, members, invitations and the (empty) accounts go with it (foreign keys cascade).
        await db.Set<Organization>().Where(o => o.Id == orgId).ExecuteDeleteAsync(ct);
        await NotifyOrgAsync(ct);
        await transaction.CommitAsync(ct);
        StatusMessage = $"Deleted {name}.";
        return RedirectToPage();
    }

    /// <summary>Any signed-in user may start an organization; they own it and work in it from now on.</summary>
    public async Task<IActionResult> OnPostCreateAsync(string? newName, CancellationToken ct)
    {
        if (CheckName(newName) is { } problem) return Fail(problem);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var id = await orgs.CreateAsync(Org.UserId, newName!, personal: false, ct);
        audit.Add(new AuditChange("org.create", OrgInvitations.Target(id), null, new { name = newName!.Trim() }));
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        StatusMessage = $"Created {newName.Trim()}: you are its owner. Invite your team below.";
        return RedirectToPage();
    }

    public static string Format(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    /// <summary>The signed-in user's e-mail, as the audit log and the invitation name them.</summary>
    private string Actor => User.FindFirstValue(ClaimTypes.Email) ?? User.Identity?.Name ?? "";

    private static string? CheckName(string? name) =>
        string.IsNullOrWhiteSpace(name) ? "Give the organization a name."
        : name.Trim().Length > 100 ? "Use at most 100 characters for the name."
        : null;

    private static object Limits(OrgMember m) =>
        new { monthlyBudgetMicros = m.MonthlyBudgetMicros, requestsPerMinute = m.RequestsPerMinute, tokensPerMinute = m.TokensPerMinute };

    /// <summary>
    /// Begins the transaction of a change to the team: locks the organization's row (invitations and acceptances take
    /// the same lock), so concurrent changes run one after the other and each reads the rows as they are, then checks
    /// the actor still holds <paramref name="permission"/> (a transfer or role change may have landed since the page
    /// filter looked). Null, with nothing begun, when they do not.
    /// </summary>
    private async Task<IDbContextTransaction?> BeginChangeAsync(OrgPermission permission, CancellationToken ct)
    {
        var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.Database.ExecuteSqlAsync($"select 1 from organizations where id = {Org.Id} for update", ct);
        if (await FindMemberAsync(Org.UserId, ct) is { } me && OrgRoles.Allows(me.Role, permission)) return transaction;
        await transaction.DisposeAsync();
        return null;
    }

    /// <summary>
    /// Takes <paramref name="member"/> out of the organization and revokes every key they created there, in the
    /// caller's transaction; the revocations' notices reach every instance on commit.
    /// </summary>
    private async Task<int> RemoveAsync(OrgMember member, string action, string who, CancellationToken ct)
    {
        db.Remove(member);
        audit.Add(new AuditChange(action, OrgInvitations.Target(member.OrgId), new { member = who, role = OrgRoles.Name(member.Role) }, null));
        await db.SaveChangesAsync(ct);
        var revoked = await issuer.RevokeMemberKeysAsync(member.OrgId, member.UserId, ct);
        await db.Users.Where(u => u.Id == member.UserId && u.CurrentOrgId == member.OrgId)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.CurrentOrgId, (Guid?)null), ct);
        return revoked;
    }

    private Task<OrgMember?> FindMemberAsync(Guid userId, CancellationToken ct) =>
        db.Set<OrgMember>().FirstOrDefaultAsync(m => m.OrgId == Org.Id && m.UserId == userId, ct);

    private async Task<string> EmailOfAsync(Guid userId, CancellationToken ct) =>
        await db.Users.AsNoTracking().Where(u => u.Id == userId).Select(u => u.Email).FirstOrDefaultAsync(ct) ?? userId.ToString();

    /// <summary>The <c>owner:{orgId}</c> cache notice: every instance drops the organization's keys and reloads them.</summary>
    private Task NotifyOrgAsync(CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"select pg_notify({CacheNotifications.Channel}, {"owner:" + Org.Id})", ct);

    private RedirectToPageResult Fail(string message)
    {
        ErrorMessage = message;
        return RedirectToPage();
    }

    private RedirectToPageResult Done(string message)
    {
        StatusMessage = message;
        return RedirectToPage();
    }

    public sealed record MemberRow(Guid UserId, string Email, OrgRole Role, DateTimeOffset JoinedAt, long? MonthlyBudgetMicros, int? RequestsPerMinute,
        long? TokensPerMinute);

    public sealed record InvitationRow(Guid Id, string Email, OrgRole Role, DateTimeOffset ExpiresAt);
}
