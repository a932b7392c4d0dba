using AiGate.Web.Data;
using Quartz;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Quartz wiring only; each job lives with its feature. The scheduler is clustered on the app's
/// PostgreSQL (tables from migration 0002), so with several instances each firing runs on exactly
/// one of them, and a job that requested recovery is re-run by a survivor if its instance dies.
/// </summary>
public static class JobsExtensions
{
    public const string SchedulerName = "AiGate";

    public static IHostApplicationBuilder AddJobs(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<JobsOptions>().BindConfiguration(JobsOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        var connectionString = DataExtensions.GetConnectionString(builder.Configuration);

        builder.AddQuartz(q =>
        {
            q.ConfigureScheduler(o =>
            {
                o.InstanceName = SchedulerName;
                o.GenerateInstanceId = true;
            });
            q.UseDefaultThreadPool(4);
            q.UsePersistentStore(store =>
            {
                store.UsePostgres(connectionString);
                store.UseSystemTextJsonSerializer();
                store.ConfigureStore(o => o.TablePrefix = QuartzSchema.TablePrefix);
                store.UseClustering(c =>
                {
                    c.CheckinInterval = TimeSpan.FromSeconds(10);
                    c.CheckinMisfireThreshold = TimeSpan.FromSeconds(20);
                });
            });
            q.AddJobListener<JobRunRecorder>([]);

            q.AddJob<JobRunsPruneJob>(j => j.WithIdentity(JobRunsPruneJob.Key).StoreDurably().RequestRecovery());
            q.AddTrigger<JobRunsPruneJob>(t => t.ForJob(JobRunsPruneJob.Key).WithIdentity("job-runs-prune-daily", "housekeeping")
                .WithCronSchedule("0 17 3 * * ?", c => c.InTimeZone(TimeZoneInfo.Utc)));
        });

        var enabled = builder.Configuration.GetValue($"{JobsOptions.Section}:{nameof(JobsOptions.SchedulerEnabled)}", true);
        if (enabled)
            builder.AddQuartzHostedService(o =>
            {
                o.WaitForJobsToComplete = true;
                o.AwaitApplicationStarted = true;
            });
        return builder;
    }
}
