using AiGate.Web.Data;
using AiGate.Web.Features.Organizations;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Alerts;

/// <summary>
/// A user's alert choices (<c>/Account/Manage/Alerts</c>). No row means the defaults of
/// <see cref="AlertPreferences.Default"/>: every budget threshold on, no hard stop, low-balance
/// e-mail under $1, and the budget taken from the last purchase or grant.
/// </summary>
public sealed class AlertSettings
{
    public Guid UserId { get; set; }
    /// <summary>The monthly budget the user set; null means the default (the last positive purchase or grant).</summary>
    public long? MonthlyBudgetMicros { get; set; }
    public bool Notify70 { get; set; }
    public bool Notify90 { get; set; }
    public bool Notify100 { get; set; }
    /// <summary>At 100 % of the budget, /api/v1 answers 402 until the next month or a larger budget.</summary>
    public bool HardStop { get; set; }
    public bool LowBalanceEnabled { get; set; }
    public long LowBalanceMicros { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<AlertSettings>
    {
        public void Configure(EntityTypeBuilder<AlertSettings> b)
        {
            b.ToTable("alert_settings");
            b.HasKey(s => s.UserId);
            b.HasOne<Organization>().WithOne().HasForeignKey<AlertSettings>(s => s.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

/// <summary>
/// One budget alert sent: the unique key (account, month, threshold) is what makes it exactly once,
/// inserted in the same transaction as its outbox e-mail.
/// </summary>
public sealed class UsageAlert
{
    public Guid UserId { get; set; }
    /// <summary>The first day of the UTC month.</summary>
    public DateOnly Period { get; set; }
    /// <summary>70, 90 or 100 (percent of the budget).</summary>
    public int Threshold { get; set; }
    public long BudgetMicros { get; set; }
    public long SpendMicros { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<UsageAlert>
    {
        public void Configure(EntityTypeBuilder<UsageAlert> b)
        {
            b.ToTable("usage_alerts");
            b.HasKey(a => new { a.UserId, a.Period, a.Threshold });
            b.HasOne<Organization>().WithMany().HasForeignKey(a => a.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

/// <summary>
/// A low-balance e-mail sent for the current crossing: while the row exists no other is sent; the
/// alerts job deletes it when the balance is back at or above the amount (re-armed).
/// </summary>
public sealed class LowBalanceAlert
{
    public Guid UserId { get; set; }
    public long ThresholdMicros { get; set; }
    public long BalanceMicros { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<LowBalanceAlert>
    {
        public void Configure(EntityTypeBuilder<LowBalanceAlert> b)
        {
            b.ToTable("low_balance_alerts");
            b.HasKey(a => a.UserId);
            b.HasOne<Organization>().WithOne().HasForeignKey<LowBalanceAlert>(a => a.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

/// <summary>
/// An account whose hard stop is on and whose spend reached its budget in <see cref="Period"/>:
/// every instance keeps these in memory (<see cref="BudgetStops"/>) and refuses its /api/v1 calls.
/// </summary>
public sealed class BudgetStop
{
    public Guid UserId { get; set; }
    public DateOnly Period { get; set; }
    public long BudgetMicros { get; set; }
    public long SpendMicros { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<BudgetStop>
    {
        public void Configure(EntityTypeBuilder<BudgetStop> b)
        {
            b.ToTable("budget_stops");
            b.HasKey(s => s.UserId);
            b.HasOne<Organization>().WithOne().HasForeignKey<BudgetStop>(s => s.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}
