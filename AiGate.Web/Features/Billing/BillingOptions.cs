using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// What we sell: plans (monthly subscriptions that grant an allowance each paid period) and credit packs (one-off
/// top-ups that credit exactly the amount paid, plus any stated bonus). Prices are integer US cents, as Stripe
/// charges them; credit is integer micro-USD, as the ledger keeps it. Bound from the <c>Billing</c> section.
/// </summary>
public sealed class BillingOptions
{
    public const string Section = "Billing";

    /// <summary>Plans in the order the pricing page shows them (defaults in appsettings.json: lists bind by index, so no defaults here). The first plan with a zero price is where lapsed subscriptions fall back.</summary>
    public List<PlanOption> Plans { get; set; } = [];

    /// <summary>Fixed credit packs shown on the pricing and billing pages.</summary>
    public List<CreditPackOption> CreditPacks { get; set; } = [];

    /// <summary>
    /// Rate limits of accounts without a subscription, by what they have paid in total (<see cref="UsageTiers"/>); below the
    /// first tier, and never less than, the free plan's. Defaults in appsettings.json (lists bind by index).
    /// </summary>
    public List<UsageTierOption> UsageTiers { get; set; } = [];

    /// <summary>Smallest custom top-up, in cents (Stripe's own minimum for USD is 50 cents).</summary>
    [Range(50, 100_000_000)]
    public long CustomAmountMinCents { get; set; } = 500;

    /// <summary>Largest custom top-up, in cents.</summary>
    [Range(50, 100_000_000)]
    public long CustomAmountMaxCents { get; set; } = 100_000;

    /// <summary>How often the dunning job looks for due reminders (it also runs at start of each instance's schedule).</summary>
    [Range(10, 86_400)]
    public int DunningPollSeconds { get; set; } = 900;

    /// <summary>
    /// The fee of a call served with the user's own provider key (BYOK), in percent of what the same call costs with the
    /// platform's keys (the model's price on our price list, margin included). 0 makes BYOK calls free.
    /// </summary>
    [Range(typeof(decimal), "0", "100", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public decimal ByokFeePercent { get; set; } = 5m;

    /// <summary>
    /// The fee of a call to a user's own OpenAI-compatible endpoint (<c>byok/{label}/{model}</c>, no catalogue price), in
    /// micro-USD per million tokens, input and output alike. Default 100,000: $0.10 per million tokens.
    /// </summary>
    [Range(0, 1_000_000_000)]
    public long ByokCustomFeePerMTokMicros { get; set; } = 100_000;

    public PlanOption? FindPlan(string? id) => Plans.FirstOrDefault(p => string.Equals(p.Id, id, StringComparison.Ordinal));

    public CreditPackOption? FindPack(string? id) => CreditPacks.FirstOrDefault(p => string.Equals(p.Id, id, StringComparison.Ordinal));

    /// <summary>The plan lapsed or cancelled subscriptions fall back to.</summary>
    public PlanOption FreePlan => Plans.FirstOrDefault(p => p.MonthlyPriceCents == 0) ?? throw new InvalidOperationException("Billing:Plans needs a plan with a zero price");
}

public sealed class PlanOption
{
    /// <summary>Stable id stored on the account and in Stripe metadata (<c>free</c>, <c>starter</c>…).</summary>
    [Required, RegularExpression("^[a-z0-9-]{1,32}$")]
    public string Id { get; set; } = "";

    [Required, StringLength(40)]
    public string Name { get; set; } = "";

    [Range(0, 100_000_000)]
    public long MonthlyPriceCents { get; set; }

    /// <summary>Credit granted once per paid period (micro-USD).</summary>
    [Range(0, long.MaxValue)]
    public long MonthlyAllowanceMicros { get; set; }

    /// <summary>Account-wide request rate limit while on this plan.</summary>
    [Range(1, int.MaxValue)]
    public int RequestsPerMinute { get; set; }

    /// <summary>Account-wide token rate limit while on this plan.</summary>
    [Range(1, long.MaxValue)]
    public long TokensPerMinute { get; set; }

    /// <summary>
    /// How many people an organization on this plan may hold: members plus pending invitations (issue 17), checked
    /// when someone is invited and again when they accept.
    /// </summary>
    [Range(1, 100_000)]
    public int Seats { get; set; } = 1;

    /// <summary>The Stripe Price (recurring, monthly) this plan is sold with; empty for the free plan and in local test mode.</summary>
    [StringLength(100)]
    public string? StripePriceId { get; set; }
}

public sealed class CreditPackOption
{
    [Required, RegularExpression("^[a-z0-9-]{1,32}$")]
    public string Id { get; set; } = "";

    [Range(50, 100_000_000)]
    public long PriceCents { get; set; }

    /// <summary>Extra credit on top of the amount paid (micro-USD), shown on the pricing page.</summary>
    [Range(0, long.MaxValue)]
    public long BonusMicros { get; set; }

    /// <summary>What the pack credits: exactly the amount paid plus the stated bonus.</summary>
    public long CreditMicros => PriceCents * 10_000 + BonusMicros;
}
