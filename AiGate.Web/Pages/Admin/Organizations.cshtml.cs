using AiGate.Web.Data;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// Organizations, newest first, searchable by name or by a member's e-mail and paged like the users: personal or team, the
/// owner's e-mail, members, balance and plan; each row links to /Admin/Organizations/{id}.
/// </summary>
public sealed class OrganizationsModel(AppDbContext db, IOptions<BillingOptions> billing) : PageModel
{
    public const int PageSize = 50;
    public string? Query { get; private set; }
    public int PageNumber { get; private set; } = 1;
    public int Total { get; private set; }
    public int Pages => Math.Max(1, (Total + PageSize - 1) / PageSize);
    public IReadOnlyList<OrgRow> Organizations { get; private set; } = [];

    public async Task OnGetAsync(string? q, int p, CancellationToken ct)
    {
        Query = q?.Trim();
        var orgs = db.Set<Organization>().AsNoTracking();
        if (!string.IsNullOrEmpty(Query))
        {
            var escaped = Query.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal)
                .Replace("_", "\\_", StringComparison.Ordinal);
            var name = "%" + escaped + "%";
            var email = "%" + escaped.ToUpperInvariant() + "%";
            orgs = orgs.Where(o => EF.Functions.ILike(o.Name, name)
                || db.Set<OrgMember>().Any(m => m.OrgId == o.Id && db.Users.Any(u => u.Id == m.UserId && EF.Functions.Like(u.NormalizedEmail!, email))));
        }
        Total = await orgs.CountAsync(ct);
        PageNumber = Math.Clamp(p, 1, Pages);
        var rows = await orgs.OrderByDescending(o => o.CreatedAt).ThenBy(o => o.Id).Skip((PageNumber - 1) * PageSize).Take(PageSize)
            .Select(o => new
            {
                o.Id, o.Name, o.Personal, o.CreatedAt,
                Owner = (from m in db.Set<OrgMember>() join u in db.Users on m.UserId equals u.Id
                         where m.OrgId == o.Id && m.Role == OrgRole.Owner select u.Email).FirstOrDefault(),
                Members = db.Set<OrgMember>().Count(m => m.OrgId == o.Id),
                Balance = db.Set<CreditAccount>().Where(c => c.UserId == o.Id).Select(c => (long?)c.BalanceMicros).FirstOrDefault() ?? 0,
                PlanId = db.Set<BillingAccount>().Where(a => a.UserId == o.Id).Select(a => a.PlanId).FirstOrDefault(),
            })
            .ToListAsync(ct);
        Organizations = [.. rows.Select(r => new OrgRow(r.Id, r.Name, r.Personal, r.Owner, r.Members, r.Balance, PlanName(billing.Value, r.PlanId), r.CreatedAt))];
    }

    public static string PlanName(BillingOptions billing, string? planId) => (billing.FindPlan(planId) ?? billing.FreePlan).Name;

    public sealed record OrgRow(Guid Id, string Name, bool Personal, string? OwnerEmail, int Members, long BalanceMicros, string Plan, DateTimeOffset CreatedAt);
}
