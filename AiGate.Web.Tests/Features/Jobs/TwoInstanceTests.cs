using AiGate.Web.Tests.Infrastructure;
using Xunit.Abstractions;

namespace AiGate.Web.Tests.Features.Jobs;

/// <summary>
/// Two instances of the built app, as child processes, on one database, both running a Hangfire server,
/// with the provider health-check recurring job firing every second: every fire runs exactly once
/// across the two (RELIABILITY J1), which job_runs shows as one row per scheduled fire time.
/// </summary>
public sealed class TwoInstanceTests(ITestOutputHelper output) : IAsyncLifetime
{
    private TestDatabase _database = null!;

    public async Task InitializeAsync() => _database = await TestDatabase.CreateMigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task Each_scheduled_fire_runs_once_across_two_instances()
    {
        await using var first = StartInstance();
        await using var second = StartInstance();
        await first.WaitReadyAsync();
        await second.WaitReadyAsync();

        // Both servers have registered…
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await _database.ScalarAsync<long>("select count(*) from hangfire.server") < 2 && DateTime.UtcNow < deadline)
            await Task.Delay(200);
        Assert.Equal(2, await _database.ScalarAsync<long>("select count(*) from hangfire.server"));

        // …and the job fires every second for a while.
        const string job = "job_name = 'provider-health-check' and outcome = 'Succeeded'";
        var start = await _database.ScalarAsync<long>($"select count(*) from job_runs where {job}");
        deadline = DateTime.UtcNow.AddSeconds(60);
        while (await _database.ScalarAsync<long>($"select count(*) from job_runs where {job}") < start + 12 && DateTime.UtcNow < deadline)
            await Task.Delay(250);
        await first.DisposeAsync();
        await second.DisposeAsync();

        var runs = await _database.ScalarAsync<long>($"select count(*) from job_runs where {job}");
        var fires = await _database.ScalarAsync<long>($"select count(distinct scheduled_at) from job_runs where {job}");
        Assert.True(runs >= 12, $"only {runs} runs in 60 s\n{first.Log}\n{second.Log}");
        output.WriteLine($"{runs} runs, {fires} distinct fire times; per instance: " +
            await _database.ScalarAsync<string>($"select string_agg(n::text, ', ') from (select count(*) n from job_runs where {job} group by instance_id) t"));
        Assert.Equal(fires, runs);   // no scheduled fire ran twice
        Assert.Equal(runs, await _database.ScalarAsync<long>($"select count(distinct fire_instance_id) from job_runs where {job}"));
        Assert.Equal(0, await _database.ScalarAsync<long>("select count(*) from job_runs where scheduled_at is null"));
        // Each run probed the one configured provider once. The instances are killed, not stopped: a run in flight on
        // each may have written its probe but not its job_runs row, so at most one extra probe per instance.
        Assert.InRange(await _database.ScalarAsync<long>("select count(*) from provider_probes where provider = 'echo'"), runs, runs + 2);
        // No two runs overlapped ([DisableConcurrentExecution] holds across instances).
        Assert.Equal(0, await _database.ScalarAsync<long>($"""
            select count(*) from job_runs a join job_runs b on a.id < b.id
            where a.{job.Replace(" and ", " and a.", StringComparison.Ordinal)} and b.{job.Replace(" and ", " and b.", StringComparison.Ordinal)}
              and a.started_at < b.started_at + b.duration_ms * interval '1 millisecond'
              and b.started_at < a.started_at + a.duration_ms * interval '1 millisecond'
            """));
    }

    private AppProcess StartInstance() => AppProcess.Start(new Dictionary<string, string?>
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Testing", ["ConnectionStrings__Default"] = _database.ConnectionString,
        ["Jobs__SchedulerEnabled"] = "true", ["ProviderHealth__ProbeIntervalSeconds"] = "1",
        ["Email__PollSeconds"] = "3600", ["Providers__echo__Kind"] = "echo",
    });
}
