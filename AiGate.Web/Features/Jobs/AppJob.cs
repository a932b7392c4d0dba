using System.Globalization;
using Hangfire;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// A background job. Hangfire calls <see cref="RunAsync"/> with the server's cancellation token in place of the
/// <see cref="CancellationToken.None"/> it was registered with. Hangfire retries a failed run, so every job is
/// idempotent (its own unique rows or conditional updates), and sweeps carry <see cref="DisableConcurrentExecutionAttribute"/>
/// so two instances never run the same sweep at once.
/// </summary>
public interface IAppJob
{
    Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A recurring job as a feature declares it: its id (the one admins see on the dashboard and in <c>job_runs</c>),
/// its group, its cron (UTC, seconds allowed) and what it does. <see cref="RecurringJobsRegistrar"/> applies them at start.
/// </summary>
public sealed record RecurringJobSpec(string Id, string Group, string Cron, Type JobType, string Description,
    Action<IRecurringJobManager, RecurringJobSpec> Register);

public static class RecurringJobs
{
    /// <summary>Declares a recurring job of this feature; applied to Hangfire's storage when the server starts.</summary>
    public static IHostApplicationBuilder AddRecurringJob<TJob>(this IHostApplicationBuilder builder, string id, string group, string cron, string description)
        where TJob : class, IAppJob
    {
        builder.Services.AddScoped<TJob>();
        builder.Services.AddSingleton(new RecurringJobSpec(id, group, cron, typeof(TJob), description, static (manager, spec) =>
            manager.AddOrUpdate<TJob>(spec.Id, j => j.RunAsync(CancellationToken.None), spec.Cron,
                new RecurringJobOptions { TimeZone = TimeZoneInfo.Utc })));
        return builder;
    }

    /// <summary>
    /// A cron for "every <paramref name="interval"/>". Cron steps must divide the minute, hour or day, so the
    /// interval is rounded down to the nearest step that does (45 s runs every 30 s, 7 min every 6 min): a job
    /// never runs less often than configured.
    /// </summary>
    public static string Every(TimeSpan interval)
    {
        var seconds = Math.Max(1, (int)interval.TotalSeconds);
        if (seconds < 60) return $"{Step(seconds, 60, "*")} * * * * *";
        if (seconds < 3600) return $"0 {Step(seconds / 60, 60, "*")} * * * *";
        if (seconds < 86400) return $"0 0 {Step(seconds / 3600, 24, "*")} * * *";
        return "0 0 0 * * *";
    }

    private static string Step(int wanted, int whole, string every)
    {
        var step = wanted;
        while (whole % step != 0) step--;
        return step == 1 ? every : "*/" + step.ToString(CultureInfo.InvariantCulture);
    }
}
