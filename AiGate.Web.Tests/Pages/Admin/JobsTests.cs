using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Jobs;
using AiGate.Web.Tests.Infrastructure;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>The app with its real Hangfire server, so the dashboard's and the page's actions reach it and runs land in job_runs.</summary>
public sealed class JobsApp : AccountsApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Jobs:SchedulerEnabled"] = "true",
    };
}

public sealed partial class JobsTests(JobsApp app) : IClassFixture<JobsApp>
{
    private const string Password = "a long enough passphrase";

    private async Task<WebSession> AdminAsync()
    {
        var email = $"admin-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, Password, admin: true);
        var session = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync(email, Password)).StatusCode);
        return session;
    }

    private async Task WaitForRecurringJobsAsync()
    {
        _ = app.Server;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        // The server registers the recurring jobs in the background as it starts.
        while (await app.Database.ScalarAsync<long>("select count(*) from hangfire.set where key = 'recurring-jobs'") < 8 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
    }

    [Fact]
    public async Task Signed_out_visitors_go_to_the_login_page_and_users_without_the_admin_role_are_refused()
    {
        await WaitForRecurringJobsAsync();
        using var anonymous = app.NewSession();
        foreach (var url in (string[])["/admin/jobs", "/admin/hangfire", "/admin/hangfire/recurring"])
        {
            var signedOut = await anonymous.GetAsync(url);
            Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
            Assert.StartsWith("/Account/Login", signedOut.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
        }

        var email = $"user-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, Password);
        using var user = app.NewSession();
        await user.LogInAsync(email, Password);
        foreach (var url in (string[])["/admin/jobs", "/admin/hangfire", "/admin/hangfire/jobs/failed"])
        {
            var refused = await user.GetAsync(url);
            Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
            Assert.StartsWith("/Account/AccessDenied", refused.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
        }

        // Forged posts (no page to take a token from, so with none): refused before anything runs.
        var before = await app.Database.ScalarAsync<long>("select count(*) from audit_log");
        var jobsBefore = await app.Database.ScalarAsync<long>("select count(*) from hangfire.job");
        var pause = await user.Http.PostAsync("/admin/jobs?handler=Pause", Form(("id", JobRunsPruneJob.Id)));
        Assert.NotEqual(HttpStatusCode.OK, pause.StatusCode);
        Assert.NotEqual("/admin/jobs", pause.Headers.Location?.PathAndQuery);
        var trigger = await user.Http.PostAsync("/admin/hangfire/recurring/trigger", Form(("jobs[]", JobRunsPruneJob.Id)));
        Assert.Equal(HttpStatusCode.Redirect, trigger.StatusCode);
        Assert.StartsWith("/Account/AccessDenied", trigger.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(before, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
        Assert.Equal(jobsBefore, await app.Database.ScalarAsync<long>("select count(*) from hangfire.job"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>("select count(*) from hangfire.set where key = 'aigate:paused-recurring-jobs'"));
    }

    [Fact]
    public async Task Admins_get_the_dashboard_under_its_own_CSP_and_the_page_links_to_it()
    {
        await WaitForRecurringJobsAsync();
        using var admin = await AdminAsync();

        var dashboard = await admin.GetAsync("/admin/hangfire/recurring");
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        var html = await dashboard.Content.ReadAsStringAsync();
        Assert.Contains("AiGate jobs", html, StringComparison.Ordinal);
        Assert.Contains("job-runs-prune", html, StringComparison.Ordinal);
        Assert.Contains("provider-health-check", html, StringComparison.Ordinal);
        Assert.Contains("script-src 'self' 'unsafe-inline'", dashboard.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal("DENY", dashboard.Headers.GetValues("X-Frame-Options").Single());

        var page = await admin.GetAsync("/admin/jobs");
        var pageHtml = await page.Content.ReadAsStringAsync();
        Assert.Contains("href=\"/admin/hangfire\"", pageHtml, StringComparison.Ordinal);
        Assert.Contains("data-job=\"job-runs-prune\"", pageHtml, StringComparison.Ordinal);
        Assert.Contains("<code>17 3 * * *</code>", pageHtml, StringComparison.Ordinal);
        Assert.Matches(@"data-job=""job-runs-prune""[\s\S]*?<td>\d{4}-\d\d-\d\d 03:17:00</td>", pageHtml);   // next fire, in UTC
        Assert.Contains("data-job=\"email-outbox\"", pageHtml, StringComparison.Ordinal);
        Assert.Contains("Deletes job run history older than Jobs:RunHistoryDays.", pageHtml, StringComparison.Ordinal);
        Assert.Contains("Credit lease sweeper", pageHtml, StringComparison.Ordinal);
        // The rest of the app keeps the strict policy.
        Assert.Contains("script-src 'self';", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Triggering_from_the_dashboard_runs_the_job_once_and_is_audited_and_needs_the_antiforgery_token()
    {
        await WaitForRecurringJobsAsync();
        using var admin = await AdminAsync();
        await app.Database.ExecuteAsync("delete from job_runs where job_name = 'job-runs-prune'");
        var html = await admin.TextAsync("/admin/hangfire/recurring");
        var header = Meta(html, "csrf-header");
        var token = Meta(html, "csrf-token");

        // Without the token: refused, nothing runs, nothing audited.
        var auditBefore = await app.Database.ScalarAsync<long>("select count(*) from audit_log");
        var jobsBefore = await app.Database.ScalarAsync<long>("select count(*) from hangfire.job");
        var forged = await admin.Http.PostAsync("/admin/hangfire/recurring/trigger", Form(("jobs[]", JobRunsPruneJob.Id)));
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        Assert.Equal(auditBefore, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
        Assert.Equal(jobsBefore, await app.Database.ScalarAsync<long>("select count(*) from hangfire.job"));

        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/hangfire/recurring/trigger") { Content = Form(("jobs[]", JobRunsPruneJob.Id)) };
        request.Headers.Add(header, token);
        var triggered = await admin.Http.SendAsync(request);
        Assert.True(triggered.IsSuccessStatusCode, $"trigger answered {(int)triggered.StatusCode}");

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'job-runs-prune'") == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        await Task.Delay(500);
        Assert.Equal(1, await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'job-runs-prune' and outcome = 'Succeeded'"));

        var page = await admin.TextAsync("/admin/jobs");
        var run = RunRows().Matches(page).Select(m => m.Value).First(r => r.Contains("job-runs-prune", StringComparison.Ordinal));
        Assert.Contains("Succeeded", run, StringComparison.Ordinal);
        var audit = AuditRows().Matches(page).Select(m => m.Value).First();
        Assert.Contains("job.trigger", audit, StringComparison.Ordinal);
        Assert.Contains("<td>job-runs-prune</td>", audit, StringComparison.Ordinal);
        Assert.Matches(@"<td>admin-[0-9a-f]+@example\.test</td>", audit);
    }

    [Fact]
    public async Task A_failing_job_is_retried_and_shows_as_failed_in_the_dashboard_and_the_run_history()
    {
        await WaitForRecurringJobsAsync();
        using var admin = await AdminAsync();
        var jobId = app.Services.GetRequiredService<IBackgroundJobClient>().Enqueue<AlwaysFailsJob>(j => j.RunAsync(CancellationToken.None));

        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (await app.Database.ScalarAsync<string>($"select statename from hangfire.job where id = {jobId}") != "Failed" && DateTime.UtcNow < deadline)
            await Task.Delay(200);

        Assert.Equal("Failed", await app.Database.ScalarAsync<string>($"select statename from hangfire.job where id = {jobId}"));
        // Two attempts: the first, then the one retry its [AutomaticRetry] allows; each is a failed run with the error.
        Assert.Equal(2, await app.Database.ScalarAsync<long>($"select count(*) from job_runs where fire_instance_id = '{jobId}' and outcome = 'Failed'"));
        Assert.Equal("InvalidOperationException: the upstream said no",
            await app.Database.ScalarAsync<string>($"select error from job_runs where fire_instance_id = '{jobId}' limit 1"));
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from hangfire.state where jobid = {jobId} and name = 'Scheduled'"));

        var failed = await admin.TextAsync("/admin/hangfire/jobs/failed");
        Assert.Contains($"/admin/hangfire/jobs/details/{jobId}\"", failed, StringComparison.Ordinal);
        Assert.Contains("the upstream said no", failed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pause_stops_the_scheduled_fires_on_every_instance_resume_restarts_them_and_both_are_audited()
    {
        await WaitForRecurringJobsAsync();
        using var admin = await AdminAsync();
        const string id = "test-every-second";
        var manager = app.Services.GetRequiredService<IRecurringJobManager>();
        manager.AddOrUpdate<CountingJob>(id, j => j.RunAsync(CancellationToken.None), "* * * * * *");
        try
        {
            await WaitForRunsAsync(id, 2);

            var paused = await admin.SubmitAsync("/admin/jobs", new() { ["id"] = id }, "/admin/jobs?handler=Pause");
            Assert.Equal(HttpStatusCode.Redirect, paused.StatusCode);
            var page = await admin.TextAsync("/admin/jobs");
            Assert.Matches($@"data-job=""{id}""[\s\S]*?data-testid=""job-paused"">Paused<", page);
            Assert.Contains($"aria-label=\"Resume {id}\"", page, StringComparison.Ordinal);
            await Task.Delay(1500);   // a fire created just before the pause may still run
            var whilePaused = await RunsAsync(id);
            await Task.Delay(3000);
            Assert.Equal(whilePaused, await RunsAsync(id));

            var resumed = await admin.SubmitAsync("/admin/jobs", new() { ["id"] = id }, "/admin/jobs?handler=Resume");
            Assert.Equal(HttpStatusCode.Redirect, resumed.StatusCode);
            await WaitForRunsAsync(id, whilePaused + 2);

            Assert.Equal(["job.resume", "job.pause"], await ActionsAsync(id, 2));
            // The pause was behind a confirm step: the page's first Pause control only opens it.
            Assert.Matches(@"<details class=""job-confirm"">\s*<summary>Pause…</summary>", await admin.TextAsync("/admin/jobs"));
        }
        finally
        {
            manager.RemoveIfExists(id);
        }
    }

    [Fact]
    public async Task An_unknown_job_is_a_404_and_nothing_is_audited()
    {
        await WaitForRecurringJobsAsync();
        using var admin = await AdminAsync();
        var before = await app.Database.ScalarAsync<long>("select count(*) from audit_log");

        var response = await admin.SubmitAsync("/admin/jobs", new() { ["id"] = "missing" }, "/admin/jobs?handler=Pause");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(before, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
    }

    private Task<long> RunsAsync(string job) => app.Database.ScalarAsync<long>($"select count(*) from job_runs where job_name = '{job}'");

    private async Task WaitForRunsAsync(string job, long count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await RunsAsync(job) < count && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.True(await RunsAsync(job) >= count, $"{job} ran {await RunsAsync(job)} times, expected {count}");
    }

    private async Task<List<string>> ActionsAsync(string target, int count)
    {
        var actions = new List<string>();
        for (var i = 0; i < count; i++)
            actions.Add((await app.Database.ScalarAsync<string>($"select action from audit_log where target = '{target}' order by id desc offset {i} limit 1"))!);
        return actions;
    }

    private static FormUrlEncodedContent Form(params (string Name, string Value)[] fields) =>
        new(fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));

    private static string Meta(string html, string name)
    {
        var match = Regex.Match(html, $"<meta name=\"{name}\" content=\"([^\"]+)\"");
        Assert.True(match.Success, $"no {name} on the dashboard");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    [GeneratedRegex(@"<tr data-testid=""run-row"">[\s\S]*?</tr>")]
    private static partial Regex RunRows();

    [GeneratedRegex(@"<tr data-testid=""audit-row"">[\s\S]*?</tr>")]
    private static partial Regex AuditRows();
}

/// <summary>Fails every time; one retry, a second later, so the test sees the retry and then the failed state.</summary>
[AutomaticRetry(Attempts = 1, DelaysInSeconds = [1])]
public sealed class AlwaysFailsJob : IAppJob
{
    public Task RunAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("the upstream said no");
}

public sealed class CountingJob : IAppJob
{
    public Task RunAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
