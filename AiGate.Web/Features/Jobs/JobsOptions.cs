using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Jobs;

public sealed class JobsOptions
{
    public const string Section = "Jobs";

    /// <summary>Run the scheduler in this instance. Off for CLI verbs and in most tests.</summary>
    public bool SchedulerEnabled { get; set; } = true;

    /// <summary>How long job run history is kept.</summary>
    [Range(1, 3650)]
    public int RunHistoryDays { get; set; } = 30;
}
