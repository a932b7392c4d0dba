using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Pages.Account;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// One user, for an operator: balance (available, held, debt), ledger (paged), plan and subscription, rate limits and
/// where they come from, memberships, keys (the personal organization's, and those the user created in their other
/// organizations), recent usage, payments with their refunds and disputes; and the actions of
/// <see cref="AccountActions"/>, each audited. Every post redirects back with a one-line outcome (PRG).
/// </summary>
public sealed class UserModel(AppDbContext db, AccountActions actions, Ledger ledger, AuditLog audit, UserManager<AppUser> users, EmailOutbox outbox,
    IOptions<EmailOptions> email, IOptions<BillingOptions> billing) : PageModel
{
    public const int LedgerPageSize = 25;
    private const decimal MaxAdjustmentUsd = 1_000_000;

    public UserView Profile { get; private set; } = null!;
    public CreditBalance Balance { get; private set; } = new(0, 0);
    public PlanView Plan { get; private set; } = null!;
    public AccountLimits Limits { get; private set; } = null!;
    public long PaidCents { get; private set; }
    public IReadOnlyList<KeyRow> Keys { get; private set; } = [];
    public IReadOnlyList<LedgerRow> LedgerRows { get; private set; } = [];
    /// <summary>The id to pass as <c>before</c> for the next (older) ledger page; null on the last page.</summary>
    public long? LedgerOlderBefore { get; private set; }
    public long? LedgerBefore { get; private set; }
    public IReadOnlyList<UsageRow> Usage { get; private set; } = [];
    public IReadOnlyList<PaymentRow> Payments { get; private set; } = [];
    public IReadOnlyList<AuditRow> History { get; private set; } = [];
    /// <summary>The organizations the user belongs to, with their role (links to /Admin/Organizations/{id}).</summary>
    public IReadOnlyList<MembershipRow> Memberships { get; private set; } = [];

    [TempData] public string? Notice { get; set; }
    [TempData] public string? Problem { get; set; }

    public async Task<IActionResult> OnGetAsync(Guid id, long? before, CancellationToken ct)
    {
        var adminRoleId = db.Roles.Where(r => r.Name == Roles.Admin).Select(r => r.Id);
        var profile = await db.Users.AsNoTracking().Where(u => u.Id == id)
            .Select(u => new UserView(u.Id, u.Email!, u.EmailConfirmed, u.TwoFactorEnabled, u.CreatedAt,
                db.UserRoles.Any(r => r.UserId == u.Id && adminRoleId.Contains(r.RoleId)), u.SuspendedAt, u.SuspensionReason,
                u.RequestsPerMinuteOverride, u.TokensPerMinuteOverride))
            .FirstOrDefaultAsync(ct);
        if (profile is null) return NotFound();
        Profile = profile;
        Balance = await ledger.GetBalanceAsync(id, ct);
        Memberships = [.. (await (from m in db.Set<OrgMember>().AsNoTracking()
                                  join o in db.Set<Organization>() on m.OrgId equals o.Id
                                  where m.UserId == id
                                  select new MembershipRow(o.Id, o.Name, o.Personal, m.Role, db.Set<OrgMember>().Count(x => x.OrgId == o.Id)))
                .ToListAsync(ct))
            .OrderByDescending(m => m.OrgId == id).ThenBy(m => m.Name, StringComparer.OrdinalIgnoreCase)];

        var account = await db.Set<BillingAccount>().AsNoTracking().Where(a => a.UserId == id)
            .Select(a => new { a.PlanId, a.StripeCustomerId, a.SubscriptionId, a.SubscriptionStatus, a.CurrentPeriodEnd, a.CancelAtPeriodEnd, a.PastDueSince, a.DisputedAt })
            .FirstOrDefaultAsync(ct);
        var plan = billing.Value.FindPlan(account?.PlanId) ?? billing.Value.FreePlan;
        Plan = new PlanView(plan.Name, account?.StripeCustomerId, account?.SubscriptionId, account?.SubscriptionStatus, account?.CurrentPeriodEnd,
            account?.CancelAtPeriodEnd ?? false, account?.PastDueSince, account?.DisputedAt);
        PaidCents = await UsageTiers.PaidCentsAsync(db, id, ct);
        Limits = UsageTiers.Resolve(billing.Value, account?.PlanId, PaidCents, profile.RequestsPerMinuteOverride, profile.TokensPerMinuteOverride);

        // Every key of the personal organization, and the keys the user created in the other organizations they belong to.
        var memberOf = Memberships.Select(m => m.OrgId).ToList();
        Keys = await (from k in db.Set<ApiKey>().AsNoTracking()
                      join o in db.Set<Organization>() on k.OwnerId equals o.Id
                      where k.OwnerId == id || (k.CreatedBy == id && memberOf.Contains(k.OwnerId))
                      orderby k.CreatedAt descending
                      select new KeyRow(k.Id, k.Name, k.Prefix, k.Last4, k.CreatedAt, k.LastUsedAt, k.ExpiresAt, k.RevokedAt, o.Id, o.Name))
            .ToListAsync(ct);

        LedgerBefore = before;
        var entries = db.Set<LedgerEntry>().AsNoTracking().Where(e => e.UserId == id);
        if (before is { } b) entries = entries.Where(e => e.Id < b);
        var page = await entries.OrderByDescending(e => e.Id).Take(LedgerPageSize + 1)
            .Select(e => new LedgerRow(e.Id, e.Kind, e.AmountMicros, e.Reference, e.CreatedAt)).ToListAsync(ct);
        LedgerOlderBefore = page.Count > LedgerPageSize ? page[LedgerPageSize - 1].Id : null;
        LedgerRows = page.Count > LedgerPageSize ? page[..LedgerPageSize] : page;

        Usage = await db.Set<UsageEvent>().AsNoTracking().Where(e => e.UserId == id).OrderByDescending(e => e.CreatedAt).Take(20)
            .Select(e => new UsageRow(e.CreatedAt, e.ModelId, e.Provider, e.PromptTokens, e.CompletionTokens, e.CostMicros, e.Status))
            .ToListAsync(ct);
        Payments = await db.Set<StripePayment>().AsNoTracking().Where(p => p.UserId == id).OrderByDescending(p => p.CreatedAt).Take(50)
            .Select(p => new PaymentRow(p.Id, p.Kind, p.AmountCents, p.CreditedMicros, p.ClawedBackMicros, p.CreatedAt))
            .ToListAsync(ct);
        var target = $"user:{id}";
        History = await db.Set<AuditEntry>().AsNoTracking().Where(a => a.Target == target || a.Detail == target).OrderByDescending(a => a.At).Take(20)
            .Select(a => new AuditRow(a.At, a.Actor, a.Action, a.Target, a.Before, a.After, a.Reason)).ToListAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostCreditAsync(Guid id, string? direction, string? amount, string? reason, CancellationToken ct)
    {
        if (direction is not ("grant" or "deduct"))
            return Done(id, AdminOutcome.Refused("Choose grant or deduct."));
        if (!decimal.TryParse(amount, NumberStyles.Number, CultureInfo.InvariantCulture, out var usd) || usd <= 0 || usd > MaxAdjustmentUsd
            || decimal.Round(usd, 6) != usd)
            return Done(id, AdminOutcome.Refused("Enter an amount in USD above 0 and at most 1,000,000, with up to 6 decimals (e.g. 25 or 2.50)."));
        var micros = Money.FromUsd(usd);
        return Done(id, await actions.AdjustCreditAsync(id, direction == "grant" ? micros : -micros, reason, ct));
    }

    public async Task<IActionResult> OnPostSuspendAsync(Guid id, string? reason, CancellationToken ct) =>
        Done(id, await actions.SetSuspendedAsync(id, suspend: true, reason, ct));

    public async Task<IActionResult> OnPostUnsuspendAsync(Guid id, string? reason, CancellationToken ct) =>
        Done(id, await actions.SetSuspendedAsync(id, suspend: false, reason, ct));

    public async Task<IActionResult> OnPostClearDisputeAsync(Guid id, string? reason, CancellationToken ct) =>
        Done(id, await actions.ClearDisputeAsync(id, reason, ct));

    public async Task<IActionResult> OnPostRevokeKeyAsync(Guid id, Guid keyId, string? reason, CancellationToken ct) =>
        Done(id, await actions.RevokeKeyAsync(id, keyId, reason, ct));

    public async Task<IActionResult> OnPostRateLimitsAsync(Guid id, string? rpm, string? tpm, string? reason, CancellationToken ct)
    {
        if (!TryLimit(rpm, int.MaxValue, out var requests) || !TryLimit(tpm, long.MaxValue, out var tokens))
            return Done(id, AdminOutcome.Refused("Limits are whole numbers of at least 1; leave a field empty for no override."));
        return Done(id, await actions.SetRateLimitOverrideAsync(id, (int?)requests, tokens, reason, ct));
    }

    /// <summary>Sends the confirmation link again (not a change of money or access: the reason is optional).</summary>
    public async Task<IActionResult> OnPostResendConfirmationAsync(Guid id, string? reason, CancellationToken ct)
    {
        var user = await users.FindByIdAsync(id.ToString());
        if (user is null) return Done(id, AdminOutcome.Refused("No such user."));
        if (user.EmailConfirmed) return Done(id, AdminOutcome.Refused("The e-mail address is already confirmed."));
        await this.QueueConfirmationLinkAsync(users, outbox, email.Value, user);
        audit.Add(new AuditChange("user.resend-confirmation", $"user:{id}", Reason: string.IsNullOrWhiteSpace(reason) ? null : reason, Detail: user.Email));
        await db.SaveChangesAsync(ct);
        return Done(id, new AdminOutcome(true, $"Confirmation link sent to {user.Email}."));
    }

    private static bool TryLimit(string? text, long max, out long? value)
    {
        value = null;
        if (string.IsNullOrWhiteSpace(text)) return true;
        if (!long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed < 1 || parsed > max) return false;
        value = parsed;
        return true;
    }

    private RedirectResult Done(Guid id, AdminOutcome outcome)
    {
        if (outcome.Done) Notice = outcome.Message;
        else Problem = outcome.Message;
        return Redirect($"/Admin/Users/{id}");
    }

    public sealed record UserView(Guid Id, string Email, bool EmailConfirmed, bool TwoFactorEnabled, DateTimeOffset CreatedAt, bool IsAdmin,
        DateTimeOffset? SuspendedAt, string? SuspensionReason, int? RequestsPerMinuteOverride, long? TokensPerMinuteOverride);

    public sealed record PlanView(string Name, string? StripeCustomerId, string? SubscriptionId, string? SubscriptionStatus, DateTimeOffset? PeriodEnd,
        bool CancelAtPeriodEnd, DateTimeOffset? PastDueSince, DateTimeOffset? DisputedAt);

    /// <param name="OrgId">The organization the key belongs to: the user's own id for their personal organization's keys,
    /// the only ones this page revokes (<see cref="AccountActions.RevokeKeyAsync"/> takes the account's keys).</param>
    public sealed record KeyRow(Guid Id, string Name, string Prefix, string Last4, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt,
        DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, Guid OrgId, string OrgName);

    public sealed record MembershipRow(Guid OrgId, string Name, bool Personal, OrgRole Role, int Members);

    public sealed record LedgerRow(long Id, string Kind, long AmountMicros, string? Reference, DateTimeOffset CreatedAt);

    public sealed record UsageRow(DateTimeOffset At, string ModelId, string Provider, long PromptTokens, long CompletionTokens, long CostMicros, int Status);

    public sealed record PaymentRow(string Id, string Kind, long AmountCents, long CreditedMicros, long ClawedBackMicros, DateTimeOffset CreatedAt);

    public sealed record AuditRow(DateTimeOffset At, string Actor, string Action, string Target, string? Before, string? After, string? Reason);
}
