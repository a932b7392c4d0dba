using AiGate.Web.Data;
using AiGate.Web.Features.Email;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using Npgsql;
using AiGate.Web.Features.Jobs;
using AiGate.Web.Features.Organizations;
using Hangfire;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// Chases failed plan payments (issue 7's dunning): after <c>invoice.payment_failed</c> marks an account past
/// due, e-mails go out on day 0, 3 and 7 of the episode through the outbox, each with the link to update the
/// payment method; <c>invoice.paid</c> ends the episode and no further e-mail goes. The day-7 step moves the
/// account to the free plan (the balance is kept) and says so. Each step is claimed with a conditional update
/// in the same transaction as its outbox row, so two instances (or a recovered job) never send a step twice.
/// The account is an organization: the e-mails go to its owner and billing members (<see cref="MoneyRecipients"/>).
/// </summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed partial class DunningJob(AppDbContext db, EmailOutbox outbox, NpgsqlDataSource dataSource, IOptions<BillingOptions> billing,
    IOptions<EmailOptions> email, TimeProvider clock, ILogger<DunningJob> logger) : IAppJob
{
    public const string Id = "dunning";

    /// <summary>Days after the failure on which the e-mails go; the last one ends the plan.</summary>
    public static readonly int[] Days = [0, 3, 7];

    public async Task RunAsync(CancellationToken cancellationToken) =>
        await RunDueAsync(clock.GetUtcNow(), cancellationToken);

    /// <summary>Sends every step due at <paramref name="now"/>; returns how many.</summary>
    public async Task<int> RunDueAsync(DateTimeOffset now, CancellationToken ct)
    {
        var due = await db.Set<BillingAccount>().AsNoTracking()
            .Where(a => a.DunningNextAt != null && a.DunningNextAt <= now && a.PastDueSince != null)
            .OrderBy(a => a.DunningNextAt).Take(200)
            .Select(a => new { a.UserId, a.DunningStep, a.PastDueSince, a.PlanId })
            .ToListAsync(ct);
        var recipients = await MoneyRecipients.ForAsync(dataSource, [.. due.Select(a => a.UserId)], ct);
        var sent = 0;
        foreach (var account in due)
            if (await StepAsync(account.UserId, account.DunningStep, account.PastDueSince!.Value, account.PlanId,
                    recipients.GetValueOrDefault(account.UserId) ?? [], now, ct)) sent++;
        return sent;
    }

    private async Task<bool> StepAsync(Guid userId, int step, DateTimeOffset pastDueSince, string planId, List<MoneyRecipient> to, DateTimeOffset now,
        CancellationToken ct)
    {
        var o = billing.Value;
        var last = step >= Days.Length - 1;
        DateTimeOffset? next = last ? null : pastDueSince.AddDays(Days[step + 1]);
        var plan = o.FindPlan(planId) ?? o.FreePlan;

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        // Claim the step: only the run that moves it from `step` sends it.
        var claimed = await db.Set<BillingAccount>()
            .Where(a => a.UserId == userId && a.DunningStep == step && a.PastDueSince != null && a.DunningNextAt != null && a.DunningNextAt <= now)
            .ExecuteUpdateAsync(u => u.SetProperty(a => a.DunningStep, step + 1).SetProperty(a => a.DunningNextAt, next).SetProperty(a => a.UpdatedAt, now), ct);
        if (claimed == 0) return false;

        var billingUrl = BillingUrl();
        if (last)
        {
            // Fall back to the free plan; events newer than this moment (a later paid invoice) still win.
            var free = o.FreePlan.Id;
            var asOf = now.ToUnixTimeSeconds();
            await db.Set<BillingAccount>().Where(a => a.UserId == userId)
                .ExecuteUpdateAsync(u => u.SetProperty(a => a.PlanId, free).SetProperty(a => a.StateAsOf, asOf), ct);
            await CacheNotifications.PublishAsync((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)transaction.GetDbTransaction(), $"owner:{userId}", ct);
        }
        if (to.Count > 0)
        {
            var content = last
                ? EmailTemplates.PlanEndedUnpaid(plan.Name, o.FreePlan.Name, billingUrl)
                : EmailTemplates.PaymentFailed(plan.Name, step + 1, Days[^1] - Days[step], billingUrl);
            foreach (var recipient in to) outbox.Enqueue(recipient.Email, content, recipient.UserId);
            await db.SaveChangesAsync(ct);
        }
        await transaction.CommitAsync(ct);
        LogStep(userId, step + 1, last);
        return true;
    }

    /// <summary>The billing page, where the past-due banner's button opens the portal to update the card.</summary>
    private string BillingUrl() => Accounts.AccountLinks.ForJob(email.Value, "/billing");

    [LoggerMessage(Level = LogLevel.Information, Message = "Dunning step {Step} for {UserId} (last: {Last})")]
    private partial void LogStep(Guid userId, int step, bool last);
}
