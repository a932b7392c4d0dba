using AiGate.Web.Features.Jobs;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Quartz;

namespace AiGate.Web.Tests.Features.Jobs;

/// <summary>The app with its real Quartz scheduler: persistent, clustered, on the test's PostgreSQL.</summary>
public sealed class SchedulerApp : AiGateApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Jobs:SchedulerEnabled"] = "true" };
}

public sealed class SchedulerTests(SchedulerApp app) : IClassFixture<SchedulerApp>
{
    [Fact]
    public async Task Quartz_runs_a_job_on_PostgreSQL_and_records_the_run_in_job_runs()
    {
        // An old run the prune job must delete, and a recent one it must keep.
        await app.Database.ExecuteAsync("""
            insert into job_runs (job_name, job_group, trigger_name, fire_instance_id, instance_id, started_at, duration_ms, outcome)
            values ('old', 'test', 't', 'f1', 'i', now() - interval '90 days', 1, 'Succeeded'),
                   ('recent', 'test', 't', 'f2', 'i', now() - interval '1 day', 1, 'Succeeded')
            """);
        _ = app.Server;   // starts the host and with it the scheduler
        var scheduler = await app.Services.GetRequiredService<ISchedulerFactory>().GetScheduler();

        await scheduler.TriggerJob(JobRunsPruneJob.Key);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        long recorded = 0;
        while (DateTime.UtcNow < deadline &&
               (recorded = await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'job-runs-prune'")) == 0)
            await Task.Delay(100);

        Assert.Equal(1, recorded);
        Assert.Equal("Succeeded", await app.Database.ScalarAsync<string>("select outcome from job_runs where job_name = 'job-runs-prune'"));
        Assert.Equal(scheduler.SchedulerInstanceId,
            await app.Database.ScalarAsync<string>("select instance_id from job_runs where job_name = 'job-runs-prune'"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'old'"));
        Assert.Equal(1, await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'recent'"));

        // The job and its schedule live in PostgreSQL, and this instance checked in to the cluster.
        Assert.Equal(1, await app.Database.ScalarAsync<long>("select count(*) from qrtz_job_details where job_name = 'job-runs-prune'"));
        Assert.Equal(1, await app.Database.ScalarAsync<long>("select count(*) from qrtz_cron_triggers where trigger_name = 'job-runs-prune-daily'"));
        Assert.True(await app.Database.ScalarAsync<long>("select count(*) from qrtz_scheduler_state") >= 1);
    }

    [Fact]
    public async Task A_failing_job_is_recorded_with_its_error()
    {
        _ = app.Server;
        var scheduler = await app.Services.GetRequiredService<ISchedulerFactory>().GetScheduler();
        var key = new JobKey("always-fails", "test");
        await scheduler.AddJob(JobBuilder.Create<AlwaysFailsJob>().WithIdentity(key).StoreDurably().Build(), AddJobOptions.Replacing);

        await scheduler.TriggerJob(key);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        string? error = null;
        while (DateTime.UtcNow < deadline &&
               (error = await app.Database.ScalarAsync<string>("select error from job_runs where job_name = 'always-fails' and outcome = 'Failed'")) is null)
            await Task.Delay(100);

        Assert.Equal("InvalidOperationException: the upstream said no", error);
    }
}

public sealed class AlwaysFailsJob : IJob
{
    public ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) =>
        throw new InvalidOperationException("the upstream said no");
}
