using AiGate.Web.Data;
using AiGate.Web.Infrastructure;
using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Common;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Hangfire wiring only; each job lives with its feature and declares itself with
/// <see cref="RecurringJobs.AddRecurringJob{TJob}"/>. Storage is the app's PostgreSQL, schema <c>hangfire</c>,
/// installed by migration 0012 (never by Hangfire itself, so <c>migrate</c> stays the only schema changer).
/// Every instance runs a server unless <c>Jobs:SchedulerEnabled</c> is false; the recurring scheduler takes a
/// distributed lock per recurring job, so each fire is created once across instances, and a fetched job is
/// invisible to the other instances' workers, so it runs once (again only if its instance dies mid-run).
/// </summary>
public static class JobsExtensions
{
    public const string SchemaName = "hangfire";

    public static IHostApplicationBuilder AddJobs(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<JobsOptions>().BindConfiguration(JobsOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        var connectionString = DataExtensions.GetConnectionString(builder.Configuration);
        var options = builder.Configuration.GetSection(JobsOptions.Section).Get<JobsOptions>() ?? new JobsOptions();

        // Hangfire's defaults are process-wide statics (JobStorage.Current, GlobalJobFilters); registering our own
        // storage, activator and filter provider first keeps each app (and each in-process test app) to its own.
        builder.Services.AddSingleton<JobStorage>(_ =>
        {
            var storageOptions = new PostgreSqlStorageOptions
            {
                SchemaName = SchemaName,
                PrepareSchemaIfNecessary = false,
                QueuePollInterval = TimeSpan.FromSeconds(options.QueuePollSeconds),
                // Workers wait on LISTEN/NOTIFY for new jobs, so "trigger now" and the outbox nudge start at once.
                EnableLongPolling = true,
                // A running job's claim is renewed while it runs; if its instance dies, another takes it after 5 minutes.
                InvisibilityTimeout = TimeSpan.FromMinutes(5),
                UseSlidingInvisibilityTimeout = true,
            };
            return new PostgreSqlStorage(new NpgsqlConnectionFactory(connectionString, storageOptions), storageOptions);
        });
        builder.Services.AddSingleton<JobActivator>(sp => new AspNetCoreJobActivator(sp.GetRequiredService<IServiceScopeFactory>()));
        builder.Services.AddSingleton<JobRunRecorder>();
        builder.Services.AddSingleton<JobPauses>();
        builder.Services.AddSingleton<IJobFilterProvider>(sp =>
        {
            var ours = new JobFilterCollection();
            // Last of all the filters as a job starts (after [DisableConcurrentExecution] took its lock), so a run's
            // recorded start and duration are the job's own, not its wait for the previous run to finish.
            ours.Add(sp.GetRequiredService<JobRunRecorder>(), int.MaxValue);
            ours.Add(sp.GetRequiredService<JobPauses>());
            // Hangfire's global filters (statistics, continuations…) as they come, but fewer retries than its 10: every
            // recurring job fires again soon anyway, and a retry waiting on a sweep's lock holds a worker. A job's own
            // [AutomaticRetry] still wins over this one.
            var global = new JobFilterCollection();
            foreach (var filter in GlobalJobFilters.Filters)
                if (filter.Instance is not AutomaticRetryAttribute) global.Add(filter.Instance, filter.Order);
            global.Add(new AutomaticRetryAttribute { Attempts = options.RetryAttempts });
            return new JobFilterProviderCollection(global, ours, new JobFilterAttributeFilterProvider());
        });
        builder.Services.AddHangfire(static (sp, c) => c
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings()
            .UseLogProvider(new HangfireLogging(sp.GetRequiredService<ILoggerFactory>())));

        if (options.SchedulerEnabled)
        {
            builder.Services.AddHostedService<RecurringJobsRegistrar>();
            builder.Services.AddHangfireServer((sp, o) =>
            {
                o.ServerName = sp.GetRequiredService<InstanceRegistry>().InstanceId;
                o.WorkerCount = options.WorkerCount;
                // Recurring jobs run as often as every second (the provider probe in tests); the scheduler looks that often.
                o.SchedulePollingInterval = TimeSpan.FromSeconds(options.SchedulePollingSeconds);
                o.ShutdownTimeout = TimeSpan.FromSeconds(15);
            });
        }

        builder.AddRecurringJob<JobRunsPruneJob>(JobRunsPruneJob.Id, "housekeeping", "17 3 * * *",
            "Deletes job run history older than Jobs:RunHistoryDays.");
        return builder;
    }
}
