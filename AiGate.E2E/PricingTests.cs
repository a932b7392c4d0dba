using System.Text.RegularExpressions;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;

namespace AiGate.E2E;

/// <summary>
/// The app with every seeded provider configured (keys that are never used: nothing here calls a model), so the
/// pricing page lists the whole seeded catalogue as a deployment with real keys would.
/// </summary>
public sealed class PricingApp : RunningApp
{
    protected override IReadOnlyDictionary<string, string> ExtraEnvironment { get; } = new Dictionary<string, string>
    {
        ["Providers__openai__Kind"] = "openai",
        ["Providers__openai__BaseUrl"] = "http://127.0.0.1:9/v1",
        ["Providers__openai__ApiKey"] = "sk-e2e-never-sent",
        ["Providers__anthropic__Kind"] = "anthropic",
        ["Providers__anthropic__BaseUrl"] = "http://127.0.0.1:9",
        ["Providers__anthropic__ApiKey"] = "sk-e2e-never-sent",
        ["Providers__gemini__Kind"] = "gemini",
        ["Providers__gemini__BaseUrl"] = "http://127.0.0.1:9",
        ["Providers__gemini__ApiKey"] = "sk-e2e-never-sent",
    };
}

/// <summary>
/// /pricing in Chromium: reached from the landing page's navigation, the table filters as you type (pricing.js under
/// the CSP) and sorts by price, and it fits a phone. Screenshots: pricing-desktop, pricing-search, pricing-phone.
/// </summary>
public sealed class PricingTests(PricingApp app, Browser browser) : IClassFixture<PricingApp>, IClassFixture<Browser>
{
    private static ILocator VisibleRows(IPage page) => page.Locator("table.price-table tbody tr[data-model]:not([hidden])");

    private static async Task<List<string>> VisibleIdsAsync(IPage page) =>
        [.. await VisibleRows(page).EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.model)")];

    [Fact]
    public async Task The_model_table_filters_as_you_type_and_sorts_by_price()
    {
        var (page, consoleErrors) = await browser.NewPageAsync(app.BaseUrl);
        await page.GotoAsync("/");
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Pricing" }).ClickAsync();
        await Steps.Expect(page, "Pay for the tokens you use");
        Assert.EndsWith("/pricing", page.Url, StringComparison.Ordinal);

        var all = await VisibleIdsAsync(page);
        Assert.True(all.Count >= 15, $"the seeded catalogue is listed ({all.Count} rows)");
        Assert.Contains("anthropic/claude-sonnet-4-5", all);
        Assert.True(await page.GetByRole(AriaRole.Link, new() { Name = "Choose Pro" }).IsVisibleAsync());
        Assert.Equal("/billing?pack=pack-100", await page.GetByRole(AriaRole.Link, new() { Name = "Buy the $100 pack" }).GetAttributeAsync("href"));
        await Browser.ScreenshotAsync(page, "pricing-desktop");

        // Typing filters at once, without a round trip: every remaining row is Anthropic's.
        var search = page.GetByRole(AriaRole.Searchbox, new() { Name = "Search models" });
        await search.PressSequentiallyAsync("claude");
        var claude = await VisibleIdsAsync(page);
        Assert.Equal(["anthropic/claude-haiku-4-5", "anthropic/claude-opus-4-1", "anthropic/claude-sonnet-4-5"], claude);
        Assert.Equal($"3 of {all.Count} models match “claude”", (await page.Locator("[data-model-count]").InnerTextAsync()).Trim());
        Assert.EndsWith("/pricing?q=claude", page.Url, StringComparison.Ordinal);   // a reload or a shared link keeps the filter
        await page.Locator("#models").ScrollIntoViewIfNeededAsync();
        await Browser.ScreenshotAsync(page, "pricing-search");

        // Nothing matches: the table empties and says so; clearing the box brings every model back.
        await search.FillAsync("no-such-model");
        Assert.Empty(await VisibleIdsAsync(page));
        Assert.True(await page.Locator("[data-model-empty]").IsVisibleAsync());
        await search.FillAsync("");
        Assert.Equal(all, await VisibleIdsAsync(page));
        Assert.False(await page.Locator("[data-model-empty]").IsVisibleAsync());

        // Sorting by input price (a link, so it works without JavaScript) keeps the typed filter.
        await search.FillAsync("gpt");
        await page.GetByRole(AriaRole.Link, new() { Name = "Input / 1M tokens" }).ClickAsync();
        await page.WaitForURLAsync(new Regex(@"sort=input"));
        Assert.Contains("q=gpt", page.Url, StringComparison.Ordinal);
        var prices = await VisibleRows(page).Locator("[data-testid=input-price]").AllInnerTextsAsync();
        var dollars = prices.Select(p => decimal.Parse(p.Trim().TrimStart('$'), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(6, dollars.Count);   // gpt-4o, gpt-4o-mini, gpt-4.1, -mini, -nano, gpt-4o-realtime-preview (its text tokens)
        Assert.Equal(dollars.Order(), dollars);
        Assert.Equal("ascending", await page.Locator("th[aria-sort]").GetAttributeAsync("aria-sort"));

        Assert.Empty(consoleErrors);   // no CSP violation, no script error
    }

    [Fact]
    public async Task The_pricing_page_fits_a_phone_and_filters_there_too()
    {
        var (page, consoleErrors) = await browser.NewPageAsync(app.BaseUrl, width: 390, height: 844);

        await page.GotoAsync("/pricing");
        await Steps.Expect(page, "Pay for the tokens you use");

        var overflow = await page.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
        Assert.True(overflow <= 0, $"the page is {overflow}px wider than the phone's screen");
        var tableOverflow = await page.EvaluateAsync<int>("(() => { const t = document.querySelector('.table-scroll'); return t.scrollWidth - t.clientWidth; })()");
        Assert.True(tableOverflow <= 0, $"the model table scrolls sideways by {tableOverflow}px on a phone");
        await Browser.ScreenshotAsync(page, "pricing-phone");

        await page.GetByRole(AriaRole.Searchbox, new() { Name = "Search models" }).PressSequentiallyAsync("gemini");
        var rows = await VisibleIdsAsync(page);
        Assert.Equal(["google/gemini-2.0-flash", "google/gemini-2.5-flash", "google/gemini-2.5-pro"], rows);
        Assert.True(await VisibleRows(page).First.IsVisibleAsync());
        Assert.Empty(consoleErrors);
    }
}
