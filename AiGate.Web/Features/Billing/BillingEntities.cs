using AiGate.Web.Data;
using AiGate.Web.Features.Organizations;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// A user's standing with Stripe: their customer, plan and subscription. No row means the free plan and
/// no Stripe customer yet. Subscription state is applied only from events at least as new as
/// <see cref="StateAsOf"/> (Stripe's <c>event.created</c>), so out-of-order deliveries cannot roll it back.
/// </summary>
public sealed class BillingAccount
{
    public Guid UserId { get; set; }
    public string? StripeCustomerId { get; set; }
    public required string PlanId { get; set; }
    public string? SubscriptionId { get; set; }
    /// <summary>Stripe's subscription status (<c>active</c>, <c>past_due</c>, <c>canceled</c>…); null without a subscription.</summary>
    public string? SubscriptionStatus { get; set; }
    /// <summary>A subscription that has not ended: plan changes go through the portal, never a second subscription.</summary>
    public bool HasLiveSubscription => SubscriptionId is not null && SubscriptionStatus is not ("canceled" or "incomplete_expired");
    public DateTimeOffset? CurrentPeriodEnd { get; set; }
    public bool CancelAtPeriodEnd { get; set; }
    /// <summary>Set by <c>invoice.payment_failed</c>, cleared by <c>invoice.paid</c>: the billing page shows a warning.</summary>
    public DateTimeOffset? PastDueSince { get; set; }
    /// <summary>Dunning e-mails sent for the current past-due episode (<see cref="DunningJob"/>).</summary>
    public int DunningStep { get; set; }
    /// <summary>When the next dunning step is due; null when none is (paid, or the last step done).</summary>
    public DateTimeOffset? DunningNextAt { get; set; }
    /// <summary>Set by <c>charge.dispute.created</c>: the account's API keys stop working until an operator clears it.</summary>
    public DateTimeOffset? DisputedAt { get; set; }
    /// <summary>The <c>created</c> time (Unix seconds) of the newest event applied to the subscription state.</summary>
    public long StateAsOf { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<BillingAccount>
    {
        public void Configure(EntityTypeBuilder<BillingAccount> b)
        {
            b.ToTable("billing_accounts");
            b.HasKey(a => a.UserId);
            b.Property(a => a.StripeCustomerId).HasMaxLength(100);
            b.Property(a => a.PlanId).HasMaxLength(32);
            b.Property(a => a.SubscriptionId).HasMaxLength(100);
            b.Property(a => a.SubscriptionStatus).HasMaxLength(32);
            b.HasIndex(a => a.StripeCustomerId).IsUnique();
            b.HasIndex(a => a.SubscriptionId);
            b.HasIndex(a => a.DunningNextAt);
            b.HasOne<Organization>().WithOne().HasForeignKey<BillingAccount>(a => a.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

/// <summary>One Stripe event, stored once (its id is the key): a redelivery finds it and changes nothing.</summary>
public sealed class StripeEventRecord
{
    public required string Id { get; set; }
    public required string Type { get; set; }
    /// <summary>Stripe's <c>created</c> (Unix seconds).</summary>
    public long Created { get; set; }
    public DateTimeOffset ProcessedAt { get; set; }
    /// <summary>What processing concluded, for operators ("credited 10.00 USD", "unknown customer").</summary>
    public string? Outcome { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<StripeEventRecord>
    {
        public void Configure(EntityTypeBuilder<StripeEventRecord> b)
        {
            b.ToTable("stripe_events");
            b.HasKey(e => e.Id);
            b.Property(e => e.Id).HasMaxLength(255);
            b.Property(e => e.Type).HasMaxLength(100);
            b.Property(e => e.Outcome).HasMaxLength(500);
        }
    }
}

/// <summary>
/// Money Stripe took and the credit it bought: one row per fulfilled Checkout Session (packs) or paid
/// invoice (plans), keyed by that object's id, so fulfilment happens once whoever gets there first.
/// Refunds and disputes find the row by payment intent and claw back their share of the credit.
/// </summary>
public sealed class StripePayment
{
    /// <summary>The Checkout Session (<c>cs_…</c>) or invoice (<c>in_…</c>) id.</summary>
    public required string Id { get; set; }
    public Guid UserId { get; set; }
    /// <summary><c>pack</c>, <c>custom</c> or <c>plan</c>.</summary>
    public required string Kind { get; set; }
    public string? PaymentIntentId { get; set; }
    public long AmountCents { get; set; }
    public required string Currency { get; set; }
    public long CreditedMicros { get; set; }
    /// <summary>Credit taken back so far by refunds and disputes (the part recovered plus the part left as debt).</summary>
    public long ClawedBackMicros { get; set; }
    /// <summary>Stripe's hosted receipt or invoice page, for the billing history.</summary>
    public string? ReceiptUrl { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<StripePayment>
    {
        public void Configure(EntityTypeBuilder<StripePayment> b)
        {
            b.ToTable("stripe_payments");
            b.HasKey(p => p.Id);
            b.Property(p => p.Id).HasMaxLength(255);
            b.Property(p => p.Kind).HasMaxLength(16);
            b.Property(p => p.PaymentIntentId).HasMaxLength(255);
            b.Property(p => p.Currency).HasMaxLength(3);
            b.Property(p => p.ReceiptUrl).HasMaxLength(1000);
            b.HasIndex(p => p.PaymentIntentId).IsUnique();
            b.HasIndex(p => new { p.UserId, p.CreatedAt });
        }
    }
}
