using AiGate.Web.Features.Jobs;
using AiGate.Web.Infrastructure;
using AiGate.Web.Tests.Infrastructure;
using Hangfire;
using Hangfire.Common;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Jobs;

/// <summary>The app with its real Hangfire server, on the test's PostgreSQL (schema hangfire, from migration 0012).</summary>
public sealed class SchedulerApp : AiGateApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Jobs:SchedulerEnabled"] = "true" };
}

public sealed class SchedulerTests(SchedulerApp app) : IClassFixture<SchedulerApp>
{
    [Fact]
    public async Task Every_recurring_job_is_registered_with_its_id_and_schedule()
    {
        _ = app.Server;   // starts the host and with it the Hangfire server
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await app.Database.ScalarAsync<long>("select count(*) from hangfire.set where key = 'recurring-jobs'") < 8 && DateTime.UtcNow < deadline)
            await Task.Delay(100);

        async Task<string?> CronAsync(string id) =>
            await app.Database.ScalarAsync<string>($"select value from hangfire.hash where key = 'recurring-job:{id}' and field = 'Cron'");
        // The ids are today's job names; the schedules the options ask for (defaults here), in UTC.
        Assert.Equal("17 3 * * *", await CronAsync("job-runs-prune"));
        Assert.Equal("0 */5 * * * *", await CronAsync("usage-rollup"));          // Usage:RollupIntervalSeconds = 300
        Assert.Equal("37 3 * * *", await CronAsync("usage-prune"));
        Assert.Equal("0 * * * * *", await CronAsync("usage-alerts"));             // Alerts:CheckIntervalSeconds = 60
        Assert.Equal("0 */15 * * * *", await CronAsync("dunning"));              // Billing:DunningPollSeconds = 900
        Assert.Equal("*/15 * * * * *", await CronAsync("email-outbox"));         // Email:PollSeconds = 15
        Assert.Equal("*/30 * * * * *", await CronAsync("provider-health-check")); // ProviderHealth:ProbeIntervalSeconds = 30
        Assert.Equal("47 3 * * *", await CronAsync("provider-health-prune"));
        Assert.Equal("UTC", await app.Database.ScalarAsync<string>("select value from hangfire.hash where key = 'recurring-job:dunning' and field = 'TimeZoneId'"));
    }

    [Fact]
    public async Task Hangfire_runs_a_job_on_PostgreSQL_and_records_the_run_in_job_runs()
    {
        // An old run the prune job must delete, and a recent one it must keep.
        await app.Database.ExecuteAsync("""
            insert into job_runs (job_name, job_group, trigger_name, fire_instance_id, instance_id, started_at, duration_ms, outcome)
            values ('old', 'test', 't', 'f1', 'i', now() - interval '90 days', 1, 'Succeeded'),
                   ('recent', 'test', 't', 'f2', 'i', now() - interval '1 day', 1, 'Succeeded')
            """);
        _ = app.Server;
        var manager = app.Services.GetRequiredService<IRecurringJobManagerV2>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string? jobId = null;
        while (jobId is null && DateTime.UtcNow < deadline)   // registered by the server as it starts
        {
            jobId = manager.TriggerJob(JobRunsPruneJob.Id);
            if (jobId is null) await Task.Delay(100);
        }
        Assert.NotNull(jobId);

        long recorded = 0;
        while (DateTime.UtcNow < deadline &&
               (recorded = await app.Database.ScalarAsync<long>($"select count(*) from job_runs where fire_instance_id = '{jobId}'")) == 0)
            await Task.Delay(100);

        Assert.Equal(1, recorded);
        Assert.Equal("Succeeded", await app.Database.ScalarAsync<string>($"select outcome from job_runs where fire_instance_id = '{jobId}'"));
        Assert.Equal("job-runs-prune", await app.Database.ScalarAsync<string>($"select job_name from job_runs where fire_instance_id = '{jobId}'"));
        Assert.Equal("housekeeping", await app.Database.ScalarAsync<string>($"select job_group from job_runs where fire_instance_id = '{jobId}'"));
        Assert.Equal(app.Services.GetRequiredService<InstanceRegistry>().InstanceId,
            await app.Database.ScalarAsync<string>($"select instance_id from job_runs where fire_instance_id = '{jobId}'"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'old'"));
        Assert.Equal(1, await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'recent'"));

        // The job and its state live in PostgreSQL, and this instance's server is registered there.
        while (await app.Database.ScalarAsync<string>($"select statename from hangfire.job where id = {jobId}") != "Succeeded" && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Equal("Succeeded", await app.Database.ScalarAsync<string>($"select statename from hangfire.job where id = {jobId}"));
        Assert.True(await app.Database.ScalarAsync<long>("select count(*) from hangfire.server") >= 1);
    }

    [Fact]
    public void A_failed_run_is_retried_three_times_unless_the_job_says_otherwise()
    {
        var filters = app.Services.GetRequiredService<IJobFilterProvider>();
        AutomaticRetryAttribute[] RetriesOf(Job job) => [.. filters.GetFilters(job).Select(f => f.Instance).OfType<AutomaticRetryAttribute>()];

        var sweep = RetriesOf(Job.FromExpression<JobRunsPruneJob>(j => j.RunAsync(CancellationToken.None)));
        Assert.Equal(3, Assert.Single(sweep).Attempts);   // ours replaced Hangfire's default of 10, not added to it
        var own = RetriesOf(Job.FromExpression<Pages.Admin.AlwaysFailsJob>(j => j.RunAsync(CancellationToken.None)));
        Assert.Equal(1, Assert.Single(own).Attempts);
    }

    [Fact]
    public void Every_declares_a_cron_that_never_runs_less_often_than_asked() =>
        Assert.Equal(
            ["* * * * * *", "*/5 * * * * *", "*/30 * * * * *", "*/30 * * * * *", "0 * * * * *", "0 */6 * * * *", "0 */15 * * * *", "0 0 */2 * * *", "0 0 0 * * *"],
            new[] { 1, 5, 30, 45, 60, 420, 900, 7200, 86400 }.Select(s => RecurringJobs.Every(TimeSpan.FromSeconds(s))).ToArray());
}
