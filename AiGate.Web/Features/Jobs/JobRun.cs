using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Jobs;

/// <summary>One execution (attempt) of a Hangfire job, written by <see cref="JobRunRecorder"/>: the run history on /admin/jobs.</summary>
public sealed class JobRun
{
    public long Id { get; set; }
    public required string JobName { get; set; }
    public required string JobGroup { get; set; }
    public required string TriggerName { get; set; }
    public required string FireInstanceId { get; set; }
    /// <summary>The scheduler instance (machine) that ran it.</summary>
    public required string InstanceId { get; set; }
    public DateTimeOffset StartedAt { get; set; }
    /// <summary>When the trigger was due: one row per scheduled fire proves a fire ran once across the cluster.</summary>
    public DateTimeOffset? ScheduledAt { get; set; }
    public long DurationMs { get; set; }
    public JobOutcome Outcome { get; set; }
    public string? Error { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<JobRun>
    {
        public void Configure(EntityTypeBuilder<JobRun> b)
        {
            b.ToTable("job_runs");
            b.Property(r => r.JobName).HasMaxLength(200);
            b.Property(r => r.JobGroup).HasMaxLength(200);
            b.Property(r => r.TriggerName).HasMaxLength(200);
            b.Property(r => r.FireInstanceId).HasMaxLength(200);
            b.Property(r => r.InstanceId).HasMaxLength(200);
            b.Property(r => r.Outcome).HasConversion<string>().HasMaxLength(16);
            b.Property(r => r.Error).HasMaxLength(4000);
            b.HasIndex(r => new { r.JobGroup, r.JobName, r.StartedAt });
            b.HasIndex(r => r.StartedAt);
        }
    }
}

public enum JobOutcome { Succeeded, Failed, Vetoed }
