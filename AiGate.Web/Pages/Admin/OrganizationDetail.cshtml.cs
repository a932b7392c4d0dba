using AiGate.Web.Data;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// One organization, for an operator: its members with their roles and the caps set for them, balance, plan, the ledger's
/// latest entries with a sum per kind, and its keys (live and in all). Read only: credit adjustments, suspension and rate
/// overrides stay on the owner's user page, whose account a personal organization is.
/// </summary>
public sealed class OrganizationDetailModel(AppDbContext db, Ledger ledger, IOptions<BillingOptions> billing) : PageModel
{
    public const int LedgerRows = 10;

    public Organization Org { get; private set; } = null!;
    public CreditBalance Balance { get; private set; } = new(0, 0);
    public string Plan { get; private set; } = "";
    public IReadOnlyList<MemberRow> Members { get; private set; } = [];
    public IReadOnlyList<UserModel.LedgerRow> Ledger { get; private set; } = [];
    public IReadOnlyList<KindTotal> LedgerByKind { get; private set; } = [];
    public int Keys { get; private set; }
    public int LiveKeys { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid id, CancellationToken ct)
    {
        if (await db.Set<Organization>().AsNoTracking().FirstOrDefaultAsync(o => o.Id == id, ct) is not { } org) return NotFound();
        Org = org;
        Balance = await ledger.GetBalanceAsync(id, ct);
        var planId = await db.Set<BillingAccount>().AsNoTracking().Where(a => a.UserId == id).Select(a => a.PlanId).FirstOrDefaultAsync(ct);
        Plan = OrganizationsModel.PlanName(billing.Value, planId);
        Members = [.. (await (from m in db.Set<OrgMember>().AsNoTracking()
                              join u in db.Users on m.UserId equals u.Id
                              where m.OrgId == id
                              select new MemberRow(m.UserId, u.Email ?? "", m.Role, m.MonthlyBudgetMicros, m.RequestsPerMinute, m.TokensPerMinute,
                                  m.JoinedAt, db.Set<ApiKey>().Count(k => k.OwnerId == id && k.CreatedBy == m.UserId && k.RevokedAt == null)))
                .ToListAsync(ct))
            .OrderByDescending(m => m.Role).ThenBy(m => m.Email, StringComparer.OrdinalIgnoreCase)];
        Ledger = await db.Set<LedgerEntry>().AsNoTracking().Where(e => e.UserId == id).OrderByDescending(e => e.Id).Take(LedgerRows)
            .Select(e => new UserModel.LedgerRow(e.Id, e.Kind, e.AmountMicros, e.Reference, e.CreatedAt)).ToListAsync(ct);
        LedgerByKind = await db.Set<LedgerEntry>().AsNoTracking().Where(e => e.UserId == id).GroupBy(e => e.Kind).OrderBy(g => g.Key)
            .Select(g => new KindTotal(g.Key, g.Count(), g.Sum(e => e.AmountMicros))).ToListAsync(ct);
        Keys = await db.Set<ApiKey>().CountAsync(k => k.OwnerId == id, ct);
        LiveKeys = await db.Set<ApiKey>().CountAsync(k => k.OwnerId == id && k.RevokedAt == null, ct);
        return Page();
    }

    public sealed record MemberRow(Guid UserId, string Email, OrgRole Role, long? MonthlyBudgetMicros, int? RequestsPerMinute, long? TokensPerMinute,
        DateTimeOffset JoinedAt, int LiveKeys);

    public sealed record KindTotal(string Kind, int Entries, long AmountMicros);
}
