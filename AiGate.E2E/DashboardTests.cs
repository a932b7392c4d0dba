using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;

namespace AiGate.E2E;

/// <summary>
/// The dashboard after a few real calls: the operator's verbs create the user, grant credit and issue a
/// key; the key calls the local echo model; the user logs in and lands on the dashboard. Screenshot:
/// TestResults/screenshots/dashboard-01.png.
/// </summary>
public sealed class DashboardTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task A_user_with_a_few_requests_sees_balance_spend_and_requests()
    {
        var email = $"e2e-dash-{Guid.NewGuid():N}@example.com";
        const string password = "a long enough passphrase";
        await app.RunVerbForOutputAsync("create-user", "--email", email, "--password", password);
        await app.RunVerbForOutputAsync("grant-credits", "--email", email, "--usd", "5", "--reason", "e2e dashboard");
        var key = (await app.RunVerbForOutputAsync("create-key", "--email", email, "--name", "e2e")).Trim();

        using var http = new HttpClient { BaseAddress = app.BaseUrl };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        string[] prompts = ["Hello there", "Write a haiku about gateways", "What is 2 + 2?", "Summarise the plot of Hamlet in one line"];
        foreach (var prompt in prompts)
        {
            var response = await http.PostAsJsonAsync("/api/v1/chat/completions", new
            {
                model = "echo/echo-1", max_tokens = 64, messages = new[] { new { role = "user", content = prompt } },
            });
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}\n{app.Log}");
        }

        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await Steps.LogInAsync(page, email, password);
        await Steps.Expect(page, "Dashboard");

        // Usage reaches the database in batches (every 200 ms): reload until all four calls are listed.
        var rows = page.GetByTestId("request-row");
        for (var attempt = 0; attempt < 50 && await rows.CountAsync() < prompts.Length; attempt++)
        {
            await Task.Delay(200);
            await page.ReloadAsync();
        }
        Assert.Equal(prompts.Length, await rows.CountAsync());
        Assert.Equal(prompts.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), (await page.GetByTestId("month-requests").InnerTextAsync()).Trim());
        var balance = await page.GetByTestId("balance-usd").InnerTextAsync();
        Assert.Matches(new Regex(@"^\$4\.\d+$"), balance.Trim());   // $5 less the calls' cost
        Assert.Contains("echo/echo-1", await rows.First.InnerTextAsync(), StringComparison.Ordinal);
        Assert.True(await page.Locator("svg[role=img] rect.chart-bar").CountAsync() == 30);
        await Browser.ScreenshotAsync(page, "dashboard-01");
        Assert.Empty(errors);   // no CSP violations or script errors
    }
}
