using System.Security.Claims;
using System.Text.Json;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Admin;

/// <summary>One admin action: who did what to which thing, from what to what, why, when, and on which instance. Append-only.</summary>
public sealed class AuditEntry
{
    public long Id { get; set; }
    public DateTimeOffset At { get; set; }
    /// <summary>The admin's user id (null for CLI verbs, and if the account was deleted since).</summary>
    public Guid? ActorId { get; set; }
    /// <summary>The admin's e-mail at the time, kept so the record stays readable after the account goes; <c>cli</c> for verbs.</summary>
    public required string Actor { get; set; }
    /// <summary>A dotted verb: <c>job.trigger</c>, <c>model.update</c>, <c>credit.grant</c>.</summary>
    public required string Action { get; set; }
    /// <summary>What was acted on: <c>providers.provider-health-check</c>, <c>model:openai/gpt-4o</c>, <c>user:{id}</c>.</summary>
    public required string Target { get; set; }
    /// <summary>The instance that carried the action out.</summary>
    public required string InstanceId { get; set; }
    public string? Detail { get; set; }
    /// <summary>The target's state before the change, as JSON (null when it did not exist).</summary>
    public string? Before { get; set; }
    /// <summary>The target's state after the change, as JSON (null when it was removed).</summary>
    public string? After { get; set; }
    /// <summary>Why, in the admin's words; required for changes of money and access.</summary>
    public string? Reason { get; set; }
    /// <summary>The X-Request-Id of the request that made the change; null for CLI verbs and jobs.</summary>
    public string? RequestId { get; set; }

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
            b.Property(a => a.Before).HasColumnName("before_value");
            b.Property(a => a.After).HasColumnName("after_value");
            b.Property(a => a.Reason).HasMaxLength(1000);
            b.Property(a => a.RequestId).HasMaxLength(100);
            b.HasIndex(a => a.At);
            b.HasIndex(a => new { a.Target, a.At });
            b.HasIndex(a => new { a.Actor, a.At });
            b.HasIndex(a => new { a.Action, a.At });
        }
    }
}

/// <summary>
/// What changed: the verb, its target, the target's state before and after (any object; stored as JSON), and the
/// reason given. Build one per change; <see cref="AuditLog.Add"/> fills in who, when, where and which request.
/// </summary>
public sealed record AuditChange(string Action, string Target, object? Before = null, object? After = null, string? Reason = null, string? Detail = null);

/// <summary>
/// Writes audit entries. Adds to the caller's context, so the entry commits with the change it records (one
/// SaveChanges, one transaction). The actor is the signed-in admin of the current request, or <c>cli</c> outside one.
/// </summary>
public sealed class AuditLog(AppDbContext db, TimeProvider clock, InstanceRegistry instance, IHttpContextAccessor http)
{
    /// <summary>The actor of changes made by CLI verbs (they run outside any request, by whoever has the deployment's shell).</summary>
    public const string CliActor = "cli";

    private const int StateLimit = 20_000;
    private static readonly JsonSerializerOptions StateJson = new(JsonSerializerDefaults.Web) { WriteIndented = false };

    public AuditEntry Add(AuditChange change)
    {
        var context = http.HttpContext;
        var user = context?.User is { Identity.IsAuthenticated: true } signedIn ? signedIn : null;
        var entry = new AuditEntry
        {
            At = clock.GetUtcNow(),
            ActorId = user?.GetUserId(),
            Actor = Clip(user?.FindFirstValue(ClaimTypes.Email) ?? user?.Identity?.Name ?? CliActor, 256),
            Action = change.Action,
            Target = Clip(change.Target, 300),
            InstanceId = instance.InstanceId,
            Detail = change.Detail is null ? null : Clip(change.Detail, 1000),
            Before = State(change.Before),
            After = State(change.After),
            Reason = change.Reason is null ? null : Clip(change.Reason.Trim(), 1000),
            RequestId = context?.TraceIdentifier is { } id ? Clip(id, 100) : null,
        };
        db.Set<AuditEntry>().Add(entry);
        return entry;
    }

    /// <summary>JSON of a state snapshot; a string is taken as already-serialized JSON or plain text.</summary>
    private static string? State(object? state) => state switch
    {
        null => null,
        string s => Clip(s, StateLimit),
        _ => Clip(JsonSerializer.Serialize(state, state.GetType(), StateJson), StateLimit),
    };

    private static string Clip(string s, int max) => s.Length <= max ? s : s[..(max - 3)] + "...";
}
