using System.Text.Json.Nodes;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using Npgsql;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// The demo admin adds a model with a price on /Admin/Models, gives it a route to the local echo provider and tests
/// the route, looks at the providers; then a user calls the new model with the official openai npm package and is
/// charged the new price (provider price × the model's margin). Screenshots: admin-models-01.png (list),
/// admin-model-edit-01.png (the new model's form), admin-routes-01.png (its route, tested), admin-providers-01.png.
/// </summary>
public sealed class AdminModelsTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task An_admin_adds_a_priced_model_with_a_route_and_a_user_is_charged_its_price_through_the_openai_sdk()
    {
        var model = $"e2e/priced-{Guid.NewGuid():N}"[..24];
        var (page, errors) = await browser.NewPageAsync(app.BaseUrl);
        await LogInAsync(page, "admin@aigate.local", "aigate-admin-demo");
        await Expect(page, "Dashboard");

        await page.GotoAsync("/Admin/Models");
        await Expect(page, "Models and prices");
        Assert.True(await page.GetByTestId("model-row").CountAsync() > 0, "the seeded catalogue is listed");
        await Browser.ScreenshotAsync(page, "admin-models-01");

        await page.GetByTestId("new-model").ClickAsync();
        await Expect(page, "New model");
        await page.Locator("#Input_Id").FillAsync(model);
        await page.Locator("#Input_Name").FillAsync("E2E priced echo");
        await page.Locator("#Input_ContextLength").FillAsync("8192");
        await page.Locator("#Input_MaxOutputTokens").FillAsync("256");
        await page.Locator("#Input_InputPrice").FillAsync("2");
        await page.Locator("#Input_OutputPrice").FillAsync("8");
        await page.Locator("#Input_Margin").FillAsync("1.5");
        await page.GetByTestId("save-model").ClickAsync();
        await Expect(page, model);
        Assert.Contains("Created " + model, await page.GetByTestId("model-notice").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("Users pay $3.00 input, $12.00 output", await page.GetByTestId("effective-price").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "admin-model-edit-01");

        await page.Locator("#route_Provider").SelectOptionAsync("echo");
        await page.Locator("#route_UpstreamModel").FillAsync("echo-1");
        await page.GetByTestId("add-route").ClickAsync();
        await page.GetByTestId("route-row").WaitForAsync();
        await page.GetByTestId("test-route").ClickAsync();
        var tested = await page.GetByTestId("route-test-result").InnerTextAsync();
        Assert.Matches(@"echo → echo-1: OK in \d+ ms\. Answer: Echo:", tested);
        await Browser.ScreenshotAsync(page, "admin-routes-01");

        await page.GotoAsync("/Admin/Providers");
        await Expect(page, "Providers");
        Assert.Contains("Enabled", await page.Locator("tr[data-provider='echo']").InnerTextAsync(), StringComparison.Ordinal);
        await Browser.ScreenshotAsync(page, "admin-providers-01");

        // A user with credit calls the new model with the official SDK.
        var email = $"e2e-models-{Guid.NewGuid():N}@example.com";
        await app.RunVerbForOutputAsync("create-user", "--email", email, "--password", "a long enough passphrase");
        await app.RunVerbForOutputAsync("grant-credits", "--email", email, "--usd", "5", "--reason", "e2e models");
        var key = (await app.RunVerbForOutputAsync("create-key", "--email", email, "--name", "e2e")).Trim();
        var node = await ChildProcess.NodeAsync("chat.mjs", app.BaseUrl.ToString(), key, model, "price check");
        Assert.True(node.ExitCode == 0, $"{node}\n{app.Log}");
        var answer = JsonNode.Parse(node.Output)!;
        Assert.Equal("Echo: price check", answer["content"]!.GetValue<string>());
        var prompt = answer["usage"]!["prompt_tokens"]!.GetValue<long>();
        var completion = answer["usage"]!["completion_tokens"]!.GetValue<long>();
        // $2 and $8 per million tokens × 1.5, rounded up to the micro-dollar once per call.
        var expected = ((prompt * 2_000_000 + completion * 8_000_000) * 15_000 + 10_000_000_000 - 1) / 10_000_000_000;
        Assert.True(expected > 0);
        Assert.Equal(expected / 1_000_000m, answer["usage"]!["cost"]!.GetValue<decimal>());
        Assert.Equal(expected, await ChargedAsync(email, model));
        Assert.Empty(errors);
    }

    /// <summary>The cost on the user's usage row for the model, once the usage writer has written it.</summary>
    private async Task<long> ChargedAsync(string email, string model)
    {
        await using var connection = new NpgsqlConnection(app.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            select e.cost_micros from usage_events e join users u on u.id = e.user_id
            where u.normalized_email = upper($1) and e.model_id = $2
            """, connection);
        command.Parameters.Add(new() { Value = email });
        command.Parameters.Add(new() { Value = model });
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            if (await command.ExecuteScalarAsync() is long cost) return cost;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No usage row for {model} after 15 s.\n{app.Log}");
            await Task.Delay(200);
        }
    }
}
