using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Admin;

/// <summary>One admin action: who did what to which thing, when, and on which instance. Append-only.</summary>
public sealed class AuditEntry
{
    public long Id { get; set; }
    public DateTimeOffset At { get; set; }
    /// <summary>The admin's user id (null if the account was deleted since).</summary>
    public Guid? ActorId { get; set; }
    /// <summary>The admin's e-mail at the time, kept so the record stays readable after the account goes.</summary>
    public required string Actor { get; set; }
    /// <summary>A dotted verb: <c>job.trigger</c>, <c>job.pause</c>, <c>job.resume</c>.</summary>
    public required string Action { get; set; }
    /// <summary>What was acted on: <c>providers.provider-health-check</c>.</summary>
    public required string Target { get; set; }
    /// <summary>The instance that carried the action out.</summary>
    public required string InstanceId { get; set; }
    public string? Detail { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<AuditEntry>
    {
        public void Configure(EntityTypeBuilder<AuditEntry> b)
        {
            b.ToTable("audit_log");
            b.Property(a => a.Actor).HasMaxLength(256);
            b.Property(a => a.Action).HasMaxLength(64);
            b.Property(a => a.Target).HasMaxLength(300);
            b.Property(a => a.InstanceId).HasMaxLength(200);
            b.Property(a => a.Detail).HasMaxLength(1000);
            b.HasIndex(a => a.At);
            b.HasIndex(a => new { a.Target, a.At });
        }
    }
}

/// <summary>Writes audit entries. Adds to the caller's context, so the entry commits with the change it records.</summary>
public sealed class AuditLog(AppDbContext db, TimeProvider clock)
{
    public AuditEntry Add(Guid? actorId, string actor, string action, string target, string instanceId, string? detail = null)
    {
        var entry = new AuditEntry
        {
            At = clock.GetUtcNow(), ActorId = actorId, Actor = actor, Action = action, Target = target, InstanceId = instanceId,
            Detail = detail is { Length: > 1000 } ? detail[..1000] : detail,
        };
        db.Set<AuditEntry>().Add(entry);
        return entry;
    }
}
