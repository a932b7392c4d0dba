using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Organizations;

/// <summary>
/// Who holds a balance, a plan, keys and usage. Every user has a personal organization whose id is the
/// user's own id (created by a trigger on <c>users</c>, migration 0025); teams are organizations with more
/// members. The account columns of older tables (<c>user_id</c>, <c>api_keys.owner_id</c>) hold this id.
/// </summary>
public sealed class Organization
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    /// <summary>Created for a user at sign-up (its id is theirs); it can still take members.</summary>
    public bool Personal { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<Organization>
    {
        public void Configure(EntityTypeBuilder<Organization> b)
        {
            b.ToTable("organizations");
            b.Property(o => o.Name).HasMaxLength(100);
        }
    }
}

/// <summary>One person's place in an organization: their role and the caps an admin set for them (null: none).</summary>
public sealed class OrgMember
{
    public Guid OrgId { get; set; }
    public Guid UserId { get; set; }
    public OrgRole Role { get; set; }
    /// <summary>Most this member's keys may spend in a calendar month (UTC), in micro-USD.</summary>
    public long? MonthlyBudgetMicros { get; set; }
    public int? RequestsPerMinute { get; set; }
    public long? TokensPerMinute { get; set; }
    public DateTimeOffset JoinedAt { get; set; }

    /// <summary>The user who owns <paramref name="orgId"/>: an operator's suspension and rate overrides follow them.</summary>
    public static IQueryable<AppUser> OwnerOf(AppDbContext db, Guid orgId) =>
        from m in db.Set<OrgMember>()
        where m.OrgId == orgId && m.Role == OrgRole.Owner
        join u in db.Users on m.UserId equals u.Id
        select u;

    internal sealed class Configuration : IEntityTypeConfiguration<OrgMember>
    {
        public void Configure(EntityTypeBuilder<OrgMember> b)
        {
            b.ToTable("organization_members");
            b.HasKey(m => new { m.OrgId, m.UserId });
            b.Property(m => m.Role).HasConversion(r => OrgRoles.Name(r), s => OrgRoles.Parse(s)).HasMaxLength(16);
            b.HasIndex(m => m.UserId);
            // Exactly one owner per organization.
            b.HasIndex(m => m.OrgId).IsUnique().HasFilter("role = 'owner'");
            b.HasOne<Organization>().WithMany().HasForeignKey(m => m.OrgId).OnDelete(DeleteBehavior.Cascade);
            b.HasOne<AppUser>().WithMany().HasForeignKey(m => m.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

/// <summary>An invitation to join an organization, sent by e-mail; only the SHA-256 of its link token is stored.</summary>
public sealed class OrgInvitation
{
    public Guid Id { get; set; }
    public Guid OrgId { get; set; }
    public required string Email { get; set; }
    public required string NormalizedEmail { get; set; }
    public OrgRole Role { get; set; }
    public required byte[] TokenHash { get; set; }
    public Guid? InvitedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? AcceptedAt { get; set; }
    public Guid? AcceptedBy { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }

    public bool IsPending(DateTimeOffset now) => AcceptedAt is null && RevokedAt is null && ExpiresAt > now;

    internal sealed class Configuration : IEntityTypeConfiguration<OrgInvitation>
    {
        public void Configure(EntityTypeBuilder<OrgInvitation> b)
        {
            b.ToTable("organization_invitations");
            b.Property(i => i.Email).HasMaxLength(256);
            b.Property(i => i.NormalizedEmail).HasMaxLength(256);
            b.Property(i => i.Role).HasConversion(r => OrgRoles.Name(r), s => OrgRoles.Parse(s)).HasMaxLength(16);
            b.HasIndex(i => i.TokenHash).IsUnique();
            b.HasIndex(i => new { i.OrgId, i.NormalizedEmail });
            b.HasOne<Organization>().WithMany().HasForeignKey(i => i.OrgId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}
