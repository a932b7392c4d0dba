using AiGate.Web.Data;
using AiGate.Web.Features.Organizations;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Credits;

/// <summary>
/// A user's money. <see cref="BalanceMicros"/> always equals the sum of the user's ledger entries
/// (every change is written in the same transaction as its entry); <see cref="HeldMicros"/> is the
/// part of it that instances hold as leases for requests in flight. Available = balance − held.
/// A balance below zero is debt (a refund or dispute after the credits were spent).
/// </summary>
public sealed class CreditAccount
{
    public Guid UserId { get; set; }
    public long BalanceMicros { get; set; }
    public long HeldMicros { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<CreditAccount>
    {
        public void Configure(EntityTypeBuilder<CreditAccount> b)
        {
            b.ToTable("credit_accounts", t => t.HasCheckConstraint("ck_credit_accounts_held", "held_micros >= 0"));
            b.HasKey(a => a.UserId);
            b.HasOne<Organization>().WithOne().HasForeignKey<CreditAccount>(a => a.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

public static class LedgerKinds
{
    public const string Purchase = "purchase";
    public const string Grant = "grant";
    public const string Usage = "usage";
    public const string Refund = "refund";
    public const string Adjustment = "adjustment";
    public const string Expiry = "expiry";
}

/// <summary>One append-only change of a balance (positive credits it, negative debits it). Never updated or deleted.</summary>
public sealed class LedgerEntry
{
    public long Id { get; set; }
    public Guid UserId { get; set; }
    public required string Kind { get; set; }
    public long AmountMicros { get; set; }
    /// <summary>What caused it: a request id, a Stripe object id, an operator's reason.</summary>
    public string? Reference { get; set; }
    /// <summary>Unique when set: the same change posted twice lands once.</summary>
    public string? IdempotencyKey { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<LedgerEntry>
    {
        public void Configure(EntityTypeBuilder<LedgerEntry> b)
        {
            b.ToTable("ledger_entries");
            b.Property(e => e.Kind).HasMaxLength(16);
            b.Property(e => e.Reference).HasMaxLength(200);
            b.Property(e => e.IdempotencyKey).HasMaxLength(200);
            b.HasIndex(e => e.IdempotencyKey).IsUnique();
            // No foreign key to users: the ledger is kept for accounting after an account is deleted.
            b.HasIndex(e => new { e.UserId, e.CreatedAt });
        }
    }
}

/// <summary>
/// A slice of a balance that one instance holds, so requests can reserve credit from memory. The
/// instance renews <see cref="ExpiresAt"/> while alive; a sweeper returns the leases of instances
/// that died.
/// </summary>
public sealed class CreditLease
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public required string InstanceId { get; set; }
    public long HeldMicros { get; set; }
    /// <summary>The member whose monthly budget this lease also holds (<see cref="MemberBudget"/>); null: the organization's balance only.</summary>
    public Guid? MemberId { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<CreditLease>
    {
        public void Configure(EntityTypeBuilder<CreditLease> b)
        {
            b.ToTable("credit_leases");
            b.Property(l => l.InstanceId).HasMaxLength(64);
            b.HasIndex(l => l.ExpiresAt);
            b.HasIndex(l => l.UserId);
        }
    }
}

/// <summary>One API call: who, what, how many tokens, what it cost, how it went. Append-only.</summary>
public sealed class UsageEvent
{
    public long Id { get; set; }
    public required string RequestId { get; set; }
    public Guid UserId { get; set; }
    public Guid KeyId { get; set; }
    public required string ModelId { get; set; }
    public required string Provider { get; set; }
    public long PromptTokens { get; set; }
    public long CompletionTokens { get; set; }
    public long CachedTokens { get; set; }
    public long CostMicros { get; set; }
    /// <summary>
    /// The provider's list price of the call (its tokens at the model's provider prices, no margin), micro-USD rounded up;
    /// <see cref="CostMicros"/> is this times the margin. Null for calls metered before migration 0016 recorded it.
    /// </summary>
    public long? ProviderCostMicros { get; set; }
    /// <summary>Tokens were counted by us, not reported by the provider (a stream cut short, a provider without usage).</summary>
    public bool Estimated { get; set; }
    public bool Streamed { get; set; }
    /// <summary>Served with the account's own provider key (BYOK): <see cref="CostMicros"/> is the BYOK fee, <see cref="ProviderCostMicros"/> 0.</summary>
    public bool Byok { get; set; }
    public int Status { get; set; }
    public int LatencyMs { get; set; }
    public int? TimeToFirstByteMs { get; set; }
    /// <summary>For a failed call: the error code the client was answered (the envelope's code, else its type).</summary>
    public string? ErrorCode { get; set; }
    /// <summary>For a failed call: the error message the client was answered, cut at 300 characters.</summary>
    public string? ErrorMessage { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<UsageEvent>
    {
        public void Configure(EntityTypeBuilder<UsageEvent> b)
        {
            b.ToTable("usage_events");
            b.Property(e => e.RequestId).HasMaxLength(64);
            b.Property(e => e.ModelId).HasMaxLength(128);
            b.Property(e => e.Provider).HasMaxLength(64);
            b.Property(e => e.Byok).HasDefaultValue(false);
            b.Property(e => e.ErrorCode).HasMaxLength(64);
            b.Property(e => e.ErrorMessage).HasMaxLength(300);
            b.HasIndex(e => e.RequestId).IsUnique();
            b.HasIndex(e => new { e.UserId, e.CreatedAt });
            b.HasIndex(e => new { e.KeyId, e.CreatedAt });
        }
    }
}

/// <summary>
/// A usage record PostgreSQL refused for a reason a retry cannot fix (a value out of range, a string too
/// long, a constraint), set aside so the rest of its batch is written. Nothing was charged for it: its
/// cost went back to the user's lease. Admins see it at /Admin/UsageDeadLetters and settle it by hand
/// (for example <c>grant-credits</c> with a negative amount).
/// </summary>
public sealed class UsageDeadLetter
{
    public long Id { get; set; }
    /// <summary>As the record had it; not unique (the same request may be refused again after a restart) and not length-limited.</summary>
    public required string RequestId { get; set; }
    public Guid UserId { get; set; }
    public Guid KeyId { get; set; }
    public long CostMicros { get; set; }
    /// <summary>The whole record as JSON, so an admin sees exactly what was refused.</summary>
    public required string Record { get; set; }
    /// <summary>PostgreSQL's SQLSTATE, e.g. 22001 (string too long) or 22003 (numeric out of range).</summary>
    public required string SqlState { get; set; }
    public required string Error { get; set; }
    public DateTimeOffset CreatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<UsageDeadLetter>
    {
        public void Configure(EntityTypeBuilder<UsageDeadLetter> b)
        {
            b.ToTable("usage_dead_letters");
            b.Property(e => e.Record).HasColumnType("jsonb");
            b.Property(e => e.SqlState).HasMaxLength(5);
            b.HasIndex(e => e.CreatedAt);
        }
    }
}

/// <summary>
/// What an open stream has produced so far (see <see cref="StreamCheckpoints"/>): rewritten every few seconds while
/// it runs, deleted with the write of its usage row. A row whose lease has expired belongs to an instance that died
/// mid-stream; the sweep charges it as that stream's usage (estimated) and deletes it, in one statement.
/// </summary>
public sealed class StreamCheckpoint
{
    public required string RequestId { get; set; }
    public Guid UserId { get; set; }
    public Guid KeyId { get; set; }
    public Guid LeaseId { get; set; }
    public required string ModelId { get; set; }
    public required string Provider { get; set; }
    public long PromptTokens { get; set; }
    public long CompletionTokens { get; set; }
    public long CachedTokens { get; set; }
    public long CostMicros { get; set; }
    /// <summary>The same usage at the provider's list prices (see <see cref="UsageEvent"/>).</summary>
    public long ProviderCostMicros { get; set; }
    /// <summary>The stream runs on the account's own provider key (BYOK).</summary>
    public bool Byok { get; set; }
    /// <summary>The member whose monthly spend the stream counts (<see cref="MemberBudget"/>), when tracked.</summary>
    public Guid? MemberId { get; set; }
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<StreamCheckpoint>
    {
        public void Configure(EntityTypeBuilder<StreamCheckpoint> b)
        {
            b.ToTable("stream_checkpoints");
            b.HasKey(c => c.RequestId);
            b.Property(c => c.RequestId).HasMaxLength(64);
            b.Property(c => c.ModelId).HasMaxLength(128);
            b.Property(c => c.Provider).HasMaxLength(64);
            b.Property(c => c.Byok).HasDefaultValue(false);
            b.HasIndex(c => c.LeaseId);
        }
    }
}

/// <summary>
/// A member's spend in an organization for the calendar month (UTC) <see cref="Month"/>, and the part of their monthly
/// budget (<see cref="OrgMember.MonthlyBudgetMicros"/>) that instances hold as leases (<see cref="CreditLease.MemberId"/>).
/// Remaining budget = budget − spent − held; the lease acquisition takes from it and from the organization's balance in
/// one transaction, the usage writer moves held to spent, a new month starts spent again at 0.
/// </summary>
public sealed class MemberBudget
{
    public Guid OrgId { get; set; }
    public Guid UserId { get; set; }
    public DateOnly Month { get; set; }
    public long SpentMicros { get; set; }
    public long HeldMicros { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<MemberBudget>
    {
        public void Configure(EntityTypeBuilder<MemberBudget> b)
        {
            // No foreign keys: spend of a member removed while their calls were in flight is still counted.
            b.ToTable("member_budgets", t => t.HasCheckConstraint("ck_member_budgets_held", "held_micros >= 0"));
            b.HasKey(m => new { m.OrgId, m.UserId });
        }
    }
}
