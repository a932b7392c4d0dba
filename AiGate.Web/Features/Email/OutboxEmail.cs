using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Email;

/// <summary>
/// One e-mail in the <c>email_outbox</c> table, the only way the product sends mail. A row is written in
/// the same transaction as the change that causes it and sent later by <see cref="EmailOutboxJob"/>;
/// its <see cref="Id"/> is the provider's idempotency key, so a retry after a crash never sends twice.
/// </summary>
public sealed class OutboxEmail
{
    public Guid Id { get; set; }
    /// <summary>The account the mail is about; the row goes when the account is deleted.</summary>
    public Guid? UserId { get; set; }
    /// <summary>Which template produced it (<c>confirm-email</c>, <c>reset-password</c>…).</summary>
    public required string Kind { get; set; }
    public required string ToAddress { get; set; }
    public required string Subject { get; set; }
    public required string HtmlBody { get; set; }
    public required string TextBody { get; set; }
    public OutboxStatus Status { get; set; }
    /// <summary>Send attempts so far, counted when a sender claims the row.</summary>
    public int Attempts { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>Not sent before this time (backoff after a failed attempt).</summary>
    public DateTimeOffset NextAttemptAt { get; set; }
    /// <summary>A sender's claim on the row; another instance skips it until then.</summary>
    public DateTimeOffset? LockedUntil { get; set; }
    public DateTimeOffset? SentAt { get; set; }
    /// <summary>The provider's id for the message (Resend's email id).</summary>
    public string? ProviderMessageId { get; set; }
    /// <summary>The last failure, as the provider described it (never request headers or keys).</summary>
    public string? LastError { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<OutboxEmail>
    {
        public void Configure(EntityTypeBuilder<OutboxEmail> b)
        {
            b.ToTable("email_outbox");
            b.Property(e => e.Id).ValueGeneratedNever();
            b.Property(e => e.Kind).HasMaxLength(64);
            b.Property(e => e.ToAddress).HasMaxLength(256);
            b.Property(e => e.Subject).HasMaxLength(300);
            b.Property(e => e.Status).HasConversion<string>().HasMaxLength(16);
            b.Property(e => e.ProviderMessageId).HasMaxLength(200);
            b.Property(e => e.LastError).HasMaxLength(1000);
            b.HasOne<AppUser>().WithMany().HasForeignKey(e => e.UserId).OnDelete(DeleteBehavior.Cascade);
            b.HasIndex(e => new { e.Status, e.NextAttemptAt });
            b.HasIndex(e => e.CreatedAt);
        }
    }
}

public enum OutboxStatus
{
    /// <summary>Waiting to be sent (or to be retried at <see cref="OutboxEmail.NextAttemptAt"/>).</summary>
    Pending,
    /// <summary>Accepted by the provider (Resend).</summary>
    Sent,
    /// <summary>No provider configured (Development): kept for the mailbox page, never leaves the machine.</summary>
    DeliveredLocally,
    /// <summary>Given up: rejected by the provider, or still failing after the last allowed attempt.</summary>
    Failed,
}
