using System.ComponentModel.DataAnnotations;
using System.Linq.Expressions;
using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Features.Billing;

/// <summary>A usage tier: from <see cref="MinPaidCents"/> paid in total, an account without a subscription gets these limits.</summary>
public sealed class UsageTierOption
{
    [Range(1, long.MaxValue)]
    public long MinPaidCents { get; set; }

    [Range(1, int.MaxValue)]
    public int RequestsPerMinute { get; set; }

    [Range(1, long.MaxValue)]
    public long TokensPerMinute { get; set; }
}

/// <summary>An account's rate limits and where they come from (shown to the user and to admins).</summary>
public sealed record AccountLimits(long RequestsPerMinute, long TokensPerMinute, string Source);

/// <summary>
/// Which rate limits an account gets. A subscription's plan sets them; an account without one (the free plan)
/// gets the highest usage tier its payments reach, but never less than the free plan (a tier lifts, never
/// lowers). An operator's per-account override beats both, per dimension. Paid = what Stripe took for packs,
/// top-ups and invoices, less what refunds and disputes took back (<see cref="NetPaidCents"/>).
/// </summary>
public static class UsageTiers
{
    public static UsageTierOption? TierFor(BillingOptions options, long paidCents)
    {
        UsageTierOption? best = null;
        foreach (var tier in options.UsageTiers)
            if (tier.MinPaidCents <= paidCents && (best is null || tier.MinPaidCents > best.MinPaidCents)) best = tier;
        return best;
    }

    /// <summary>1-based number of a tier in ascending order of <see cref="UsageTierOption.MinPaidCents"/> (tier 0 is the free plan).</summary>
    public static int Number(BillingOptions options, UsageTierOption tier) => 1 + options.UsageTiers.Count(t => t.MinPaidCents < tier.MinPaidCents);

    public static AccountLimits Resolve(BillingOptions options, string? planId, long paidCents, int? requestsOverride, long? tokensOverride)
    {
        var plan = options.FindPlan(planId) ?? options.FreePlan;
        long requests = plan.RequestsPerMinute, tokens = plan.TokensPerMinute;
        var source = $"{plan.Name} plan";
        if (plan.MonthlyPriceCents == 0 && TierFor(options, paidCents) is { } tier)
        {
            requests = Math.Max(requests, tier.RequestsPerMinute);
            tokens = Math.Max(tokens, tier.TokensPerMinute);
            source = $"usage tier {Number(options, tier)}";
        }
        if (requestsOverride is not null || tokensOverride is not null)
        {
            requests = requestsOverride ?? requests;
            tokens = tokensOverride ?? tokens;
            source = "admin override";
        }
        return new AccountLimits(requests, tokens, source);
    }

    /// <summary>
    /// What one payment counts toward the total paid, in cents: its amount less the credit refunds and disputes took
    /// back (in cents, capped at the amount; a pack's bonus rounds that a little in the user's disfavour, never below zero).
    /// An expression, so the key cache folds the sum into its one lookup.
    /// </summary>
    public static readonly Expression<Func<StripePayment, long>> NetPaidCents =
        p => p.AmountCents - (p.ClawedBackMicros / 10_000 < p.AmountCents ? p.ClawedBackMicros / 10_000 : p.AmountCents);

    public static Task<long> PaidCentsAsync(AppDbContext db, Guid userId, CancellationToken ct) =>
        db.Set<StripePayment>().Where(p => p.UserId == userId).SumAsync(NetPaidCents, ct);
}
