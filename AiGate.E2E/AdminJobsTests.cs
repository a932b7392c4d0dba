using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// The demo admin opens the jobs dashboard, runs the usage rollup job and the provider health-check job now,
/// and sees each new run in the history and the action in the audit log; pauses (through the confirm step) and resumes it; then the
/// public status page shows the provider the job checked. Screenshots: admin-jobs-01.png (dashboard),
/// admin-jobs-02.png (after run now), admin-jobs-03.png (paused), status-01.png (desktop), status-02.png (phone).
/// </summary>
public sealed class AdminJobsTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    private const string Job = "providers.provider-health-check";
    private const string RollupJob = "usage.usage-rollup";

    [Fact]
    public async Task An_admin_runs_a_job_now_sees_the_run_in_the_history_and_the_status_page_shows_the_provider()
    {
        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(page, "admin@aigate.local", "aigate-admin-demo");
        await Expect(page, "Dashboard");

        // The rollup job first (issue #7's E2E), then the health-check job whose probes the status page shows.
        await RunNowAndSeeTheRunAsync(page, RollupJob);
        var row = await RunNowAndSeeTheRunAsync(page, Job, beforeRun: async () =>
        {
            Assert.Contains("every 30 s", await page.Locator($"tr[data-job='{Job}']").InnerTextAsync(), StringComparison.Ordinal);
            Assert.Equal(1, await page.Locator("tr[data-job='housekeeping.job-runs-prune']").CountAsync());
            Assert.Equal(1, await page.Locator("tr[data-job='email.email-outbox']").CountAsync());
            await Browser.ScreenshotAsync(page, "admin-jobs-01");
        });
        await Browser.ScreenshotAsync(page, "admin-jobs-02");

        // Pause is behind a confirm step; then the trigger shows Paused and a Resume button.
        await row.GetByText("Pause…").ClickAsync();
        await row.GetByRole(AriaRole.Button, new() { Name = $"Confirm pausing {Job}" }).ClickAsync();
        Assert.Equal("Paused", (await page.Locator($"tr[data-job='{Job}']").GetByTestId("trigger-state").InnerTextAsync()).Trim());
        Assert.Contains("job.pause", await page.GetByTestId("audit-row").First.InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "admin-jobs-03");
        await page.Locator($"tr[data-job='{Job}']").GetByRole(AriaRole.Button, new() { Name = $"Resume {Job}" }).ClickAsync();
        Assert.Equal("Normal", (await page.Locator($"tr[data-job='{Job}']").GetByTestId("trigger-state").InnerTextAsync()).Trim());

        // The public status page, signed out, on a desktop and on a phone.
        var (status, statusErrors) = await browser.NewPageAsync(app.BaseUrl);
        await status.GotoAsync("/status");
        await Expect(status, "Status");
        var echo = status.Locator("[data-provider='echo']");
        Assert.Equal("Operational", (await echo.GetByTestId("provider-state").InnerTextAsync()).Trim());
        Assert.Equal("100 %", (await echo.GetByTestId("uptime-24h").InnerTextAsync()).Trim());
        Assert.Equal(24, await echo.Locator(".hour-strip li").CountAsync());
        await Browser.ScreenshotAsync(status, "status-01");
        var (phone, phoneErrors) = await browser.NewPageAsync(app.BaseUrl, width: 390, height: 844);
        await phone.GotoAsync("/status");
        await Expect(phone, "Status");
        await Browser.ScreenshotAsync(phone, "status-02");

        Assert.Empty(errors);   // no CSP violations or script errors
        Assert.Empty(statusErrors);
        Assert.Empty(phoneErrors);
    }

    /// <summary>Opens the job's history, presses Run now, and waits for the new run: succeeded, with an audit row by the admin.</summary>
    private static async Task<ILocator> RunNowAndSeeTheRunAsync(IPage page, string job, Func<Task>? beforeRun = null)
    {
        await page.GotoAsync($"/admin/jobs?job={job}");
        await Expect(page, "Jobs");
        var row = page.Locator($"tr[data-job='{job}']");
        var runsBefore = await page.GetByTestId("run-row").CountAsync();
        if (beforeRun is not null) await beforeRun();

        await row.GetByRole(AriaRole.Button, new() { Name = $"Run {job} now" }).ClickAsync();
        Assert.Contains($"{job} was triggered", await page.GetByTestId("job-notice").InnerTextAsync(), StringComparison.Ordinal);
        // The run is recorded when it finishes: reload until the history has one more row.
        for (var attempt = 0; attempt < 60 && await page.GetByTestId("run-row").CountAsync() <= runsBefore; attempt++)
        {
            await Task.Delay(250);
            await page.ReloadAsync();
        }
        Assert.True(await page.GetByTestId("run-row").CountAsync() > runsBefore, $"no new run of {job} appeared in the history");
        var newest = await page.GetByTestId("run-row").First.InnerTextAsync();
        Assert.Contains(job, newest, StringComparison.Ordinal);
        Assert.Contains("Succeeded", newest, StringComparison.Ordinal);
        var audit = await page.GetByTestId("audit-row").First.InnerTextAsync();
        Assert.Contains("admin@aigate.local", audit, StringComparison.Ordinal);
        Assert.Contains("job.trigger", audit, StringComparison.Ordinal);
        Assert.Contains(job, audit, StringComparison.Ordinal);
        return row;
    }
}
