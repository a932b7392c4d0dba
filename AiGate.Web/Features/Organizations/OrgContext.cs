using System.Security.Claims;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Keys;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Features.Organizations;

/// <summary>One organization a user belongs to, as the switcher lists it.</summary>
public sealed record OrgMembership(Guid OrgId, string Name, bool Personal, OrgRole Role);

/// <summary>The organization a signed-in page works in, and what the user may do there.</summary>
public sealed record CurrentOrganization(Guid UserId, OrgMembership Membership, IReadOnlyList<OrgMembership> Memberships)
{
    /// <summary>The organization's id: the account id of balances, keys and usage.</summary>
    public Guid Id => Membership.OrgId;
    public string Name => Membership.Name;
    public OrgRole Role => Membership.Role;
    public bool Can(OrgPermission permission) => OrgRoles.Allows(Role, permission);

    /// <summary>The keys this user may see and change: all of the organization's, or only their own.</summary>
    public KeyScope Keys => Can(OrgPermission.ManageAllKeys) ? new KeyScope(Id) : new KeyScope(Id, UserId);

    /// <summary>Whose usage this user may see: null for everyone's, else their own keys'.</summary>
    public Guid? UsageMember => Can(OrgPermission.ViewOrgUsage) ? null : UserId;
}

/// <summary>
/// Resolves the signed-in user's current organization once per request: the one they last chose in the switcher
/// (<c>users.current_org_id</c>) if they are still a member, else their personal organization, else the one they joined
/// first. Someone left with none (removed from the personal organization they handed over) gets a new personal one.
/// </summary>
public sealed class OrgContext(AppDbContext db, TimeProvider clock)
{
    private CurrentOrganization? _current;

    /// <summary>The organization resolved for this request (pages marked <see cref="RequiresOrgAttribute"/> have one).</summary>
    public CurrentOrganization Current => _current ?? throw new InvalidOperationException("No organization resolved for this request: mark the page [RequiresOrg].");

    /// <summary>The organization if one was resolved for this request (the layout's switcher).</summary>
    public CurrentOrganization? Resolved => _current;

    public async Task<CurrentOrganization> ResolveAsync(ClaimsPrincipal principal, CancellationToken ct)
    {
        if (_current is not null) return _current;
        var userId = principal.GetUserId();
        var memberships = await ListAsync(userId, ct);
        if (memberships.Count == 0)
        {
            await CreateAsync(userId, "Personal", personal: true, ct);
            memberships = await ListAsync(userId, ct);
        }
        var chosen = await db.Users.AsNoTracking().Where(u => u.Id == userId).Select(u => u.CurrentOrgId).FirstOrDefaultAsync(ct);
        var current = memberships.FirstOrDefault(m => m.OrgId == chosen)
            ?? memberships.FirstOrDefault(m => m.OrgId == userId)
            ?? memberships[0];
        return _current = new CurrentOrganization(userId, current, memberships);
    }

    /// <summary>Every organization <paramref name="userId"/> belongs to, personal first, then by name.</summary>
    public async Task<List<OrgMembership>> ListAsync(Guid userId, CancellationToken ct) =>
        (await (from m in db.Set<OrgMember>().AsNoTracking()
                join o in db.Set<Organization>() on m.OrgId equals o.Id
                where m.UserId == userId
                select new OrgMembership(o.Id, o.Name, o.Personal, m.Role)).ToListAsync(ct))
        .OrderByDescending(m => m.OrgId == userId).ThenBy(m => m.Name, StringComparer.OrdinalIgnoreCase).ToList();

    /// <summary>Makes <paramref name="orgId"/> the user's current organization; false when they are not a member.</summary>
    public async Task<bool> SwitchAsync(Guid userId, Guid orgId, CancellationToken ct)
    {
        if (!await db.Set<OrgMember>().AnyAsync(m => m.OrgId == orgId && m.UserId == userId, ct)) return false;
        await db.Users.Where(u => u.Id == userId).ExecuteUpdateAsync(s => s.SetProperty(u => u.CurrentOrgId, orgId), ct);
        _current = null;
        return true;
    }

    /// <summary>A new organization owned by <paramref name="ownerId"/>, who is switched to it.</summary>
    public async Task<Guid> CreateAsync(Guid ownerId, string name, bool personal, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var id = Guid.CreateVersion7();
        db.Add(new Organization { Id = id, Name = name.Trim(), Personal = personal, CreatedAt = now });
        db.Add(new OrgMember { OrgId = id, UserId = ownerId, Role = OrgRole.Owner, JoinedAt = now });
        await db.SaveChangesAsync(ct);
        await db.Users.Where(u => u.Id == ownerId).ExecuteUpdateAsync(s => s.SetProperty(u => u.CurrentOrgId, id), ct);
        _current = null;
        return id;
    }
}
