using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Jobs;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>The app with its real clustered scheduler, so the dashboard's buttons reach Quartz and runs land in job_runs.</summary>
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

    [Fact]
    public async Task Signed_out_visitors_go_to_the_login_page_and_users_without_the_admin_role_are_refused()
    {
        using var anonymous = app.NewSession();
        var signedOut = await anonymous.GetAsync("/admin/jobs");
        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
        Assert.StartsWith("/Account/Login", signedOut.Headers.Location!.PathAndQuery, StringComparison.Ordinal);

        var email = $"user-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, Password);
        using var user = app.NewSession();
        await user.LogInAsync(email, Password);
        var refused = await user.GetAsync("/admin/jobs");
        Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
        Assert.StartsWith("/Account/AccessDenied", refused.Headers.Location!.PathAndQuery, StringComparison.Ordinal);

        // A forged post (no page to take a token from, so with none): refused before anything runs.
        var before = await app.Database.ScalarAsync<long>("select count(*) from audit_log");
        var post = await user.Http.PostAsync("/admin/jobs?handler=Pause", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["group"] = JobRunsPruneJob.Key.Group, ["name"] = JobRunsPruneJob.Key.Name,
        }));
        Assert.NotEqual(HttpStatusCode.OK, post.StatusCode);
        Assert.NotEqual("/admin/jobs", post.Headers.Location?.PathAndQuery);
        Assert.Equal(before, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>("select count(*) from qrtz_triggers where trigger_state = 'PAUSED'"));
    }

    [Fact]
    public async Task The_dashboard_lists_every_job_with_its_schedule_and_the_housekeeping()
    {
        using var admin = await AdminAsync();

        var page = await admin.TextAsync("/admin/jobs");

        Assert.Contains("data-job=\"housekeeping.job-runs-prune\"", page, StringComparison.Ordinal);
        Assert.Contains("cron 0 17 3 * * ? (UTC)", page, StringComparison.Ordinal);
        Assert.Contains("data-job=\"email.email-outbox\"", page, StringComparison.Ordinal);
        Assert.Contains("data-job=\"providers.provider-health-check\"", page, StringComparison.Ordinal);
        Assert.Contains("every 30 s", page, StringComparison.Ordinal);
        Assert.Contains("Credit lease sweeper", page, StringComparison.Ordinal);
        Assert.Contains("(serving this page)", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_now_runs_the_job_once_and_the_run_and_the_audit_entry_show_on_the_page()
    {
        using var admin = await AdminAsync();
        await app.Database.ExecuteAsync("delete from job_runs where job_name = 'job-runs-prune'");

        var posted = await admin.SubmitAsync("/admin/jobs", new() { ["group"] = "housekeeping", ["name"] = "job-runs-prune" }, "/admin/jobs?handler=Trigger");
        Assert.Equal(HttpStatusCode.Redirect, posted.StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'job-runs-prune'") == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        Assert.Equal(1, await app.Database.ScalarAsync<long>("select count(*) from job_runs where job_name = 'job-runs-prune' and outcome = 'Succeeded'"));

        var page = await admin.TextAsync(posted.Headers.Location!.OriginalString);
        Assert.Contains("housekeeping.job-runs-prune was triggered", page, StringComparison.Ordinal);
        var run = RunRows().Matches(page).Select(m => m.Value).First();
        Assert.Contains("housekeeping.job-runs-prune", run, StringComparison.Ordinal);
        Assert.Contains("Succeeded", run, StringComparison.Ordinal);
        Assert.Contains(await app.Database.ScalarAsync<string>("select instance_id from job_runs where job_name = 'job-runs-prune'") ?? "?", run, StringComparison.Ordinal);
        var audit = AuditRows().Matches(page).Select(m => m.Value).First();
        Assert.Contains("job.trigger", audit, StringComparison.Ordinal);
        Assert.Contains("housekeeping.job-runs-prune", audit, StringComparison.Ordinal);
        Assert.Matches(@"<td>admin-[0-9a-f]+@example\.test</td>", audit);
    }

    [Fact]
    public async Task Pause_and_resume_change_the_trigger_state_in_the_cluster_and_are_audited()
    {
        using var admin = await AdminAsync();

        var paused = await admin.SubmitAsync("/admin/jobs", new() { ["group"] = "housekeeping", ["name"] = "job-runs-prune" }, "/admin/jobs?handler=Pause");
        Assert.Equal(HttpStatusCode.Redirect, paused.StatusCode);
        Assert.Equal("PAUSED", await app.Database.ScalarAsync<string>("select trigger_state from qrtz_triggers where trigger_name = 'job-runs-prune-daily'"));
        var page = await admin.TextAsync("/admin/jobs");
        Assert.Matches(@"data-job=""housekeeping.job-runs-prune""[\s\S]*?data-testid=""trigger-state"">Paused<", page);
        Assert.Contains("aria-label=\"Resume housekeeping.job-runs-prune\"", page, StringComparison.Ordinal);

        var resumed = await admin.SubmitAsync("/admin/jobs", new() { ["group"] = "housekeeping", ["name"] = "job-runs-prune" }, "/admin/jobs?handler=Resume");
        Assert.Equal(HttpStatusCode.Redirect, resumed.StatusCode);
        Assert.Equal("WAITING", await app.Database.ScalarAsync<string>("select trigger_state from qrtz_triggers where trigger_name = 'job-runs-prune-daily'"));

        Assert.Equal(["job.resume", "job.pause"], await ActionsAsync("housekeeping.job-runs-prune", 2));
        // The pause was behind a confirm step: the page's first Pause control only opens it.
        Assert.Matches(@"<details class=""job-confirm"">\s*<summary>Pause…</summary>", await admin.TextAsync("/admin/jobs"));
    }

    [Fact]
    public async Task An_unknown_job_is_a_404_and_nothing_is_audited()
    {
        using var admin = await AdminAsync();
        var before = await app.Database.ScalarAsync<long>("select count(*) from audit_log");

        var response = await admin.SubmitAsync("/admin/jobs", new() { ["group"] = "nope", ["name"] = "missing" }, "/admin/jobs?handler=Trigger");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(before, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
    }

    private async Task<List<string>> ActionsAsync(string target, int count)
    {
        var actions = new List<string>();
        for (var i = 0; i < count; i++)
            actions.Add((await app.Database.ScalarAsync<string>($"select action from audit_log where target = '{target}' order by id desc offset {i} limit 1"))!);
        return actions;
    }

    [GeneratedRegex(@"<tr data-testid=""run-row"">[\s\S]*?</tr>")]
    private static partial Regex RunRows();

    [GeneratedRegex(@"<tr data-testid=""audit-row"">[\s\S]*?</tr>")]
    private static partial Regex AuditRows();
}
