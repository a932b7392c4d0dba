using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using Npgsql;

namespace AiGate.E2E;

/// <summary>
/// Budget alerts in the browser: a user past 70 % of their default budget (their last grant) sees the
/// dashboard banner, follows it to the alert settings, lowers the budget under their spend with the hard
/// stop on (the API answers 402 at once), then raises it (the API answers again). Screenshots:
/// TestResults/screenshots/alerts-01.png (the banner) and alerts-02.png (the settings page, stopped).
/// </summary>
public sealed class UsageAlertsTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task A_user_sees_the_budget_banner_sets_a_hard_stop_and_lifts_it_by_raising_the_budget()
    {
        var email = $"e2e-alerts-{Guid.NewGuid():N}@example.com";
        const string password = "a long enough passphrase";
        await app.RunVerbForOutputAsync("create-user", "--email", email, "--password", password);
        await app.RunVerbForOutputAsync("grant-credits", "--email", email, "--usd", "2", "--reason", "e2e alerts");
        var key = (await app.RunVerbForOutputAsync("create-key", "--email", email, "--name", "e2e")).Trim();

        // $1.50 of this month's usage, written as the usage writer would (the echo model costs next to nothing).
        await using (var connection = new NpgsqlConnection(app.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("""
                insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                          cost_micros, estimated, streamed, status, latency_ms, created_at)
                select 'e2e-' || gen_random_uuid(), u.id, k.id, 'openai/gpt-4o-mini', 'openai', 120000, 40000, 0, 1500000, false, false, 200, 900, now()
                from users u join api_keys k on k.owner_id = u.id where u.email = $1
                """, connection);
            command.Parameters.Add(new() { Value = email });
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await Steps.LogInAsync(page, email, password);
        var banner = page.GetByTestId("budget-banner");
        await banner.WaitForAsync();
        Assert.Contains("You have used 75 % of your $2.00 monthly budget", await banner.InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "alerts-01");

        await banner.GetByRole(AriaRole.Link, new() { Name = "Change the budget or alerts" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "Usage alerts", Level = 1 }).WaitForAsync();
        await page.GetByLabel("Monthly budget (USD)").FillAsync("1");
        await page.GetByLabel("Hard stop", new() { Exact = false }).CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Save alert settings" }).ClickAsync();
        await page.GetByText("Your alert settings were saved.").WaitForAsync();
        await page.GetByTestId("alert-stopped").WaitForAsync();
        await Browser.ScreenshotAsync(page, "alerts-02");

        using var http = new HttpClient { BaseAddress = app.BaseUrl };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var chat = new { model = "echo/echo-1", max_tokens = 16, messages = new[] { new { role = "user", content = "hello" } } };
        var refused = await http.PostAsJsonAsync("/api/v1/chat/completions", chat);
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        Assert.Contains("\"code\":\"insufficient_credits\"", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        await page.GetByLabel("Monthly budget (USD)").FillAsync("5");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save alert settings" }).ClickAsync();
        await page.GetByText("Your alert settings were saved.").WaitForAsync();
        Assert.Equal(0, await page.GetByTestId("alert-stopped").CountAsync());
        var answered = await http.PostAsJsonAsync("/api/v1/chat/completions", chat);
        Assert.True(answered.IsSuccessStatusCode, $"{(int)answered.StatusCode}: {await answered.Content.ReadAsStringAsync()}");
        Assert.Empty(errors);   // no CSP violations or script errors
    }
}
