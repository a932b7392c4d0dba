using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text;
using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Organizations;

public sealed class OrganizationsOptions
{
    public const string Section = "Organizations";

    /// <summary>How long an invitation link works.</summary>
    [Range(1, 90)]
    public int InvitationDays { get; set; } = 7;
}

/// <summary>How many of its plan's seats an organization uses: members plus pending invitations.</summary>
public sealed record SeatUse(string PlanName, int Seats, int Members, int Pending)
{
    public int Used => Members + Pending;

    public string Describe() =>
        $"The {PlanName} plan has {Seats} {(Seats == 1 ? "seat" : "seats")}: {Members} {(Members == 1 ? "member" : "members")} and {Pending} pending {(Pending == 1 ? "invitation" : "invitations")} use {Used}.";
}

/// <summary>The outcome of an invitation or an acceptance: the error to show, or what was created.</summary>
public sealed record InvitationOutcome(string? Error, OrgInvitation? Invitation = null)
{
    public bool Ok => Error is null;
}

/// <summary>
/// Invitations by e-mail (issue 17). The link carries 32 random bytes (Base64Url); only their SHA-256 is stored, so the
/// table cannot be turned back into working links. Seats (members + pending invitations, per the organization's plan)
/// are checked at invite time and again at accept time, each under a lock on the organization's row so two requests
/// at once cannot both take the last seat.
/// </summary>
public sealed class OrgInvitations(AppDbContext db, EmailOutbox outbox, AuditLog audit, ILookupNormalizer normalizer,
    IOptions<BillingOptions> billing, IOptions<OrganizationsOptions> options, TimeProvider clock)
{
    public const string AcceptPath = "/organization/invite";

    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    public string Normalize(string email) => normalizer.NormalizeEmail(email.Trim());

    public async Task<SeatUse> SeatsAsync(Guid orgId, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var planId = await db.Set<BillingAccount>().AsNoTracking().Where(b => b.UserId == orgId).Select(b => b.PlanId).FirstOrDefaultAsync(ct);
        var plan = billing.Value.FindPlan(planId) ?? billing.Value.FreePlan;
        var members = await db.Set<OrgMember>().CountAsync(m => m.OrgId == orgId, ct);
        var pending = await db.Set<OrgInvitation>().CountAsync(i => i.OrgId == orgId && i.AcceptedAt == null && i.RevokedAt == null && i.ExpiresAt > now, ct);
        return new SeatUse(plan.Name, plan.Seats, members, pending);
    }

    /// <summary>
    /// Invites <paramref name="email"/> to <paramref name="org"/> as <paramref name="role"/> and queues the e-mail whose
    /// link <paramref name="linkFor"/> builds from the token. A pending invitation to the same address is revoked first.
    /// </summary>
    public async Task<InvitationOutcome> InviteAsync(CurrentOrganization org, string inviterEmail, string email, OrgRole role,
        Func<string, string> linkFor, CancellationToken ct)
    {
        if (role == OrgRole.Owner) return new("An organization has one owner; hand it over with “Transfer ownership” instead.");
        email = email.Trim();
        var normalized = Normalize(email);
        var now = clock.GetUtcNow();

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await LockAsync(org.Id, ct);
        var isMember = await (from m in db.Set<OrgMember>()
                              join u in db.Users on m.UserId equals u.Id
                              where m.OrgId == org.Id && u.NormalizedEmail == normalized
                              select m).AnyAsync(ct);
        if (isMember) return new($"{email} is already a member of {org.Name}.");

        // Re-inviting replaces the earlier link (it may have been lost or sent with the wrong role).
        var replaced = await db.Set<OrgInvitation>()
            .Where(i => i.OrgId == org.Id && i.NormalizedEmail == normalized && i.AcceptedAt == null && i.RevokedAt == null && i.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(i => i.RevokedAt, now), ct);
        var seats = await SeatsAsync(org.Id, ct);
        if (seats.Used + 1 > seats.Seats)
            return new($"No seat left for {email}. {seats.Describe()} Revoke an invitation, remove a member or move to a plan with more seats.");

        var token = WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(32));
        var invitation = new OrgInvitation
        {
            Id = Guid.CreateVersion7(now),
            OrgId = org.Id,
            Email = email,
            NormalizedEmail = normalized,
            Role = role,
            TokenHash = Hash(token),
            InvitedBy = org.UserId,
            CreatedAt = now,
            ExpiresAt = now.AddDays(options.Value.InvitationDays),
        };
        db.Add(invitation);
        var recipient = await db.Users.AsNoTracking().Where(u => u.NormalizedEmail == normalized).Select(u => (Guid?)u.Id).FirstOrDefaultAsync(ct);
        outbox.Enqueue(email, EmailTemplates.OrganizationInvite(org.Name, inviterEmail, OrgRoles.Name(role), linkFor(token), invitation.ExpiresAt), recipient);
        audit.Add(new AuditChange("org.invite", Target(org.Id), After: new { email, role = OrgRoles.Name(role), invitation.ExpiresAt },
            Detail: replaced > 0 ? "replaces the pending invitation to the same address" : null));
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return new(null, invitation);
    }

    /// <summary>The invitation a link's token belongs to, whatever its state (null when the token matches none).</summary>
    public async Task<OrgInvitation?> FindAsync(string? token, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100) return null;
        var hash = Hash(token);
        return await db.Set<OrgInvitation>().AsNoTracking().FirstOrDefaultAsync(i => i.TokenHash == hash, ct);
    }

    /// <summary>Why <paramref name="invitation"/> can no longer be accepted, or null while it is pending.</summary>
    public string? Unusable(OrgInvitation? invitation) => invitation switch
    {
        null => "This invitation link is not valid. Check that you opened the whole link from the e-mail.",
        { AcceptedAt: not null } => "This invitation has already been used. Ask the organization for a new one if you need it.",
        { RevokedAt: not null } => "This invitation was withdrawn. Ask the organization for a new one if you need it.",
        _ when invitation.ExpiresAt <= clock.GetUtcNow() =>
            string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"This invitation expired on {invitation.ExpiresAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC. Ask the organization for a new one."),
        _ => null,
    };

    /// <summary>
    /// <paramref name="userId"/> accepts the invitation of <paramref name="token"/>: they join with its role and the
    /// organization becomes their current one. Refused unless their confirmed e-mail is the invited one and a seat is free.
    /// </summary>
    public async Task<InvitationOutcome> AcceptAsync(string? token, AppUser user, CancellationToken ct)
    {
        var found = await FindAsync(token, ct);
        if (Unusable(found) is { } early) return new(early);

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        // The organization first, as InviteAsync does, so the two never wait on each other in opposite order.
        await LockAsync(found!.OrgId, ct);
        var invitation = await db.Set<OrgInvitation>().FirstAsync(i => i.Id == found.Id, ct);
        if (Unusable(invitation) is { } error) return new(error);
        if (!user.EmailConfirmed || user.NormalizedEmail != invitation.NormalizedEmail)
            return new($"This invitation was sent to another e-mail address than yours ({user.Email}). Log in with the invited address to accept it.");
        if (await db.Set<OrgMember>().AnyAsync(m => m.OrgId == invitation.OrgId && m.UserId == user.Id, ct))
            return new("You are already a member of this organization.");
        // This invitation is one of the pending ones, so accepting it uses no new seat; the check catches a plan that
        // shrank (or seats taken) since it was sent.
        var seats = await SeatsAsync(invitation.OrgId, ct);
        if (seats.Used > seats.Seats)
            return new($"The organization has no free seat for you. {seats.Describe()} Ask its owner to free a seat or change the plan.");

        var now = clock.GetUtcNow();
        invitation.AcceptedAt = now;
        invitation.AcceptedBy = user.Id;
        db.Add(new OrgMember { OrgId = invitation.OrgId, UserId = user.Id, Role = invitation.Role, JoinedAt = now });
        audit.Add(new AuditChange("org.invitation-accept", Target(invitation.OrgId), After: new { member = user.Email, role = OrgRoles.Name(invitation.Role) }));
        await db.SaveChangesAsync(ct);
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.CurrentOrgId, invitation.OrgId), ct);
        await transaction.CommitAsync(ct);
        return new(null, invitation);
    }

    public static string Target(Guid orgId) => $"org:{orgId}";

    /// <summary>Serializes seat-changing work on one organization until the transaction ends.</summary>
    private Task LockAsync(Guid orgId, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"select 1 from organizations where id = {orgId} for update", ct);
}
