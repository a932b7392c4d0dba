using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using Npgsql;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// The demo admin reads the business page (revenue against provider cost from real echo calls and a fortnight of
/// earlier usage), downloads its CSV, then filters the audit log to model changes and reads a price change's
/// before → after. Screenshots: admin-business-01.png (business page), admin-audit-01.png (audit log, filtered).
/// </summary>
public sealed class AdminBusinessAuditTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task An_admin_reads_revenue_and_margin_downloads_the_csv_and_filters_the_audit_log()
    {
        var email = $"e2e-business-{Guid.NewGuid():N}@example.com";
        await app.RunVerbForOutputAsync("create-user", "--email", email, "--password", "a long enough passphrase");
        await app.RunVerbForOutputAsync("grant-credits", "--email", email, "--usd", "5", "--reason", "e2e business");
        var key = (await app.RunVerbForOutputAsync("create-key", "--email", email, "--name", "e2e")).Trim();
        using (var http = new HttpClient { BaseAddress = app.BaseUrl })
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            for (var i = 0; i < 3; i++)
            {
                var answer = await http.PostAsJsonAsync("/api/v1/chat/completions",
                    new { model = "echo/echo-1", max_tokens = 32, messages = new[] { new { role = "user", content = "hello there" } } });
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            }
        }
        await SeedAsync(email);

        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(page, "admin@aigate.local", "aigate-admin-demo");
        await Expect(page, "Dashboard");
        await page.GotoAsync("/Admin");
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Admin" }).GetByRole(AriaRole.Link, new() { Name = "Business" }).ClickAsync();
        await Expect(page, "Business");
        // The echo calls reach the page once the usage writer has flushed them (about a second).
        for (var attempt = 0; attempt < 40 && await page.Locator("tr[data-model='echo/echo-1']").CountAsync() == 0; attempt++)
        {
            await Task.Delay(250);
            await page.ReloadAsync();
        }
        Assert.Equal("3", (await page.Locator("tr[data-model='echo/echo-1'] td").First.InnerTextAsync()).Trim());
        Assert.Contains("$", await page.GetByTestId("total-margin").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Equal(1, await page.Locator("tr[data-model='openai/gpt-4o-mini']").CountAsync());
        Assert.Equal(1, await page.Locator("tr[data-model='anthropic/claude-sonnet-4-5']").CountAsync());
        Assert.Contains(email, await page.GetByTestId("business-accounts").InnerTextAsync(), StringComparison.Ordinal);
        await page.GetByTestId("uncosted-note").WaitForAsync();
        await Browser.ScreenshotAsync(page, "admin-business-01");

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByTestId("business-csv").ClickAsync());
        Assert.Matches("^aigate-business-\\d{4}-\\d{2}-\\d{2}-to-\\d{4}-\\d{2}-\\d{2}\\.csv$", download.SuggestedFilename);
        var csv = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.StartsWith("section,day,model,account,requests,revenue_usd,provider_cost_usd,margin_usd,margin_percent,", csv, StringComparison.Ordinal);
        Assert.Contains($"account,,,{email},", csv, StringComparison.Ordinal);

        await page.GetByRole(AriaRole.Navigation, new() { Name = "Admin" }).GetByRole(AriaRole.Link, new() { Name = "Audit log" }).ClickAsync();
        await Expect(page, "Audit log");
        await page.GetByLabel("Action").FillAsync("model.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        await page.WaitForURLAsync("**/Admin/Audit?*action=model.*");
        var rows = page.GetByTestId("audit-row");
        Assert.Equal(2, await rows.CountAsync());
        var newest = await rows.First.InnerTextAsync();
        Assert.Contains("model.update", newest, StringComparison.Ordinal);
        Assert.Contains("OpenAI's new price list", newest, StringComparison.Ordinal);
        Assert.Contains("input_micros_per_mtok", newest, StringComparison.Ordinal);
        Assert.Equal(0, await page.GetByText("credit.grant").CountAsync());
        await Browser.ScreenshotAsync(page, "admin-audit-01");
        Assert.Empty(errors);   // no CSP violations or script errors
    }

    /// <summary>
    /// A fortnight of earlier usage for the account (calls cannot be made in the past), at the catalogue's list prices with the
    /// default 1.8 margin, one call from before provider costs were recorded, and audit entries as the model and credit pages write them.
    /// </summary>
    private async Task SeedAsync(string email)
    {
        await using var connection = new NpgsqlConnection(app.ConnectionString);
        await connection.OpenAsync();
        async Task ExecuteAsync(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            if (sql.Contains("$1", StringComparison.Ordinal)) command.Parameters.Add(new() { Value = email });
            await command.ExecuteNonQueryAsync();
        }
        await ExecuteAsync("""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, provider_cost_micros, estimated, streamed, status, latency_ms, created_at)
            select 'e2e-' || gen_random_uuid(), u.id, k.id, m.id, m.provider, m.prompt, m.completion, 0,
                   ceil((m.prompt * m.input + m.completion * m.output) * 1.8 / 1000000)::bigint,
                   ceil((m.prompt * m.input + m.completion * m.output) / 1000000.0)::bigint, false, false, 200, 700, now() - d * interval '1 day'
            from users u join api_keys k on k.owner_id = u.id,
                 (values ('openai/gpt-4o-mini', 'openai', 40000 :: bigint, 9000 :: bigint, 150000 :: bigint, 600000 :: bigint),
                         ('anthropic/claude-sonnet-4-5', 'anthropic', 12000, 3000, 3000000, 15000000),
                         ('google/gemini-2.5-pro', 'google', 20000, 4000, 1250000, 10000000)) as m(id, provider, prompt, completion, input, output),
                 generate_series(1, 14) as d
            where u.email = $1 and (d + length(m.id)) % 3 <> 0
            """);
        await ExecuteAsync("""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, provider_cost_micros, estimated, streamed, status, latency_ms, created_at)
            select 'e2e-old-' || gen_random_uuid(), u.id, k.id, 'openai/gpt-4o', 'openai', 30000, 5000, 0, 225000, null, false, false, 200, 900,
                   now() - interval '20 days'
            from users u join api_keys k on k.owner_id = u.id where u.email = $1
            """);
        await ExecuteAsync("""
            insert into audit_log (at, actor_id, actor, action, target, instance_id, before_value, after_value, reason, request_id) values
              (now() - interval '2 hours', null, 'admin@aigate.local', 'credit.grant', 'user:' || gen_random_uuid(), 'e2e',
               '{"balance_micros":5000000}', '{"balance_micros":15000000}', 'Goodwill after the outage', '0HNE2E:00000001'),
              (now() - interval '1 hour', null, 'cli', 'model.create', 'model:openai/gpt-4.1-nano', 'e2e',
               null, '{"name":"GPT-4.1 nano","input_micros_per_mtok":100000,"output_micros_per_mtok":400000,"enabled":true}', null, null),
              (now() - interval '5 minutes', null, 'admin@aigate.local', 'model.update', 'model:openai/gpt-4o', 'e2e',
               '{"name":"GPT-4o","input_micros_per_mtok":2500000,"output_micros_per_mtok":10000000,"margin_basis_points":18000}',
               '{"name":"GPT-4o","input_micros_per_mtok":2000000,"output_micros_per_mtok":8000000,"margin_basis_points":18000}',
               'OpenAI''s new price list', '0HNE2E:00000002')
            """);
    }
}
