using System.Net.Http.Headers;
using System.Net.Http.Json;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using Npgsql;

namespace AiGate.E2E;

/// <summary>
/// Activity analytics in Chromium: a user with real echo calls (and two weeks of earlier usage written to the table,
/// as the usage writer would) opens Activity from the navigation, groups by provider, opens the request
/// log, filters it, and opens a request's detail. Screenshots: TestResults/screenshots/activity-01.png (the Activity
/// page), activity-02.png (grouped by day), activity-03.png (the request log), activity-04.png (a request's detail).
/// </summary>
public sealed class ActivityTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task A_user_sees_activity_charts_the_request_log_and_a_requests_cost_formula()
    {
        var email = $"e2e-activity-{Guid.NewGuid():N}@example.com";
        const string password = "a long enough passphrase";
        await app.RunVerbForOutputAsync("create-user", "--email", email, "--password", password);
        await app.RunVerbForOutputAsync("grant-credits", "--email", email, "--usd", "5", "--reason", "e2e activity");
        var key = (await app.RunVerbForOutputAsync("create-key", "--email", email, "--name", "e2e activity")).Trim();

        using var http = new HttpClient { BaseAddress = app.BaseUrl };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        foreach (var prompt in new[] { "Hello there", "Write a haiku about gateways", "What is 2 + 2?" })
        {
            var response = await http.PostAsJsonAsync("/api/v1/chat/completions", new
            {
                model = "echo/echo-1", max_tokens = 64, messages = new[] { new { role = "user", content = prompt } },
            });
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}\n{app.Log}");
        }

        // Two weeks of earlier calls on the same key, several models and providers, some failed (the page adds what the rollup
        // job has not folded in yet from the raw rows, so the numbers are whole either way).
        await using (var connection = new NpgsqlConnection(app.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("""
                insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                          cost_micros, estimated, streamed, status, latency_ms, time_to_first_byte_ms, created_at)
                select 'req_e2e_' || k.id || '_' || i, k.owner_id, k.id,
                       (array['openai/gpt-4o-mini', 'anthropic/claude-sonnet-4-5', 'google/gemini-2.5-flash'])[1 + i % 3],
                       (array['openai', 'anthropic', 'gemini'])[1 + i % 3],
                       800 + (i * 37) % 3000, 100 + (i * 53) % 900, (i * 11) % 400, 300 + (i * 97) % 9000, false, i % 2 = 0,
                       case when i % 17 = 0 then 429 when i % 23 = 0 then 502 else 200 end, 150 + (i * 131) % 4000, 80 + (i * 29) % 700,
                       now() - interval '1 day' - i * interval '47 minutes'
                from api_keys k, generate_series(1, 400) i
                where k.owner_id = (select id from users where email = $1)
                """, connection);
            command.Parameters.AddWithValue(email);
            Assert.Equal(400, await command.ExecuteNonQueryAsync());
        }

        var (page, errors) = await browser.NewPageAsync(app.BaseUrl, height: 1400);
        await Steps.LogInAsync(page, email, password);
        await Steps.Expect(page, "Dashboard");
        await page.GetByRole(AriaRole.Link, new() { Name = "Activity", Exact = true }).First.ClickAsync();
        await Steps.Expect(page, "Activity");

        // Usage reaches the database in batches: reload until the three live calls are counted too.
        var requests = page.GetByTestId("total-requests");
        for (var attempt = 0; attempt < 50 && (await requests.InnerTextAsync()).Trim() != "403"; attempt++)
        {
            await Task.Delay(200);
            await page.ReloadAsync();
        }
        Assert.Equal("403", (await requests.InnerTextAsync()).Trim());
        foreach (var chart in new[] { "spend", "requests", "tokens", "errors", "latency" })
            Assert.True(await page.GetByTestId($"chart-{chart}").Locator("svg[role=img] rect").CountAsync() > 0, $"no bars in {chart}");
        Assert.Contains("echo/echo-1", await page.GetByTestId("table-spend").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "activity-01");

        await page.GetByLabel("Group by", new() { Exact = true }).SelectOptionAsync("provider");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("group=provider", StringComparison.Ordinal));
        var providers = await page.GetByTestId("table-requests").InnerTextAsync();
        foreach (var provider in new[] { "openai", "anthropic", "gemini" }) Assert.Contains(provider, providers, StringComparison.Ordinal);
        await page.GetByLabel("Group by", new() { Exact = true }).SelectOptionAsync("day");
        await page.GetByLabel("Period", new() { Exact = true }).SelectOptionAsync("30d");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("group=day", StringComparison.Ordinal));
        Assert.Equal(30, await page.GetByTestId("table-spend").Locator("tbody tr").CountAsync());
        await Browser.ScreenshotAsync(page, "activity-02");

        await page.GetByRole(AriaRole.Link, new() { Name = "Request log" }).ClickAsync();
        await Steps.Expect(page, "Request log");
        Assert.Equal(50, await page.GetByTestId("log-row").CountAsync());
        await page.GetByLabel("Status", new() { Exact = true }).SelectOptionAsync("error");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("status=error", StringComparison.Ordinal));
        var failed = page.GetByTestId("log-row");
        Assert.True(await failed.CountAsync() > 0);
        foreach (var status in await failed.Locator(".status-failed").AllInnerTextsAsync()) Assert.True(int.Parse(status.Trim(), System.Globalization.CultureInfo.InvariantCulture) >= 400);
        await page.GetByLabel("Status", new() { Exact = true }).SelectOptionAsync("");
        await page.GetByLabel("Model", new() { Exact = true }).FillAsync("echo/echo-1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("model=echo", StringComparison.Ordinal));
        Assert.Equal(3, await page.GetByTestId("log-row").CountAsync());
        await Browser.ScreenshotAsync(page, "activity-03");

        await page.GetByTestId("log-row").First.GetByRole(AriaRole.Link).ClickAsync();
        await page.GetByTestId("detail-formula").WaitForAsync();
        Assert.Equal("echo/echo-1", (await page.GetByTestId("detail-model").InnerTextAsync()).Trim());
        Assert.Contains("margin =", await page.GetByTestId("detail-formula").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("the provider", await page.GetByTestId("detail-usage-source").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "activity-04");
        Assert.Empty(errors);   // no CSP violations or script errors
    }
}
