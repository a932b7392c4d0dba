using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;

namespace AiGate.E2E;

public sealed class LandingPageTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task Landing_page_shows_the_product_and_its_navigation()
    {
        var (page, consoleErrors) = await browser.NewPageAsync(app.BaseUrl);

        var response = await page.GotoAsync("/");

        Assert.Equal(200, response!.Status);
        var heading = page.GetByRole(AriaRole.Heading, new() { Level = 1 });
        Assert.Equal("One API for every model", (await heading.InnerTextAsync()).Trim());
        var nav = page.GetByRole(AriaRole.Navigation, new() { Name = "Main" });
        Assert.True(await nav.GetByRole(AriaRole.Link, new() { Name = "AiGate" }).IsVisibleAsync());
        Assert.True(await nav.GetByRole(AriaRole.Link, new() { Name = "Features" }).IsVisibleAsync());
        // The stylesheet from wwwroot-src loaded and applies (a CSP or build problem would leave the page unstyled).
        var css = await page.APIRequest.GetAsync("/dist/app.css");
        Assert.True(css.Ok, "the built stylesheet is served");
        Assert.NotEqual("rgba(0, 0, 0, 0)", await page.EvaluateAsync<string>("getComputedStyle(document.querySelector('header')).backgroundColor + getComputedStyle(document.body).fontFamily"));
        await Browser.ScreenshotAsync(page, "landing-desktop");

        await page.GetByRole(AriaRole.Link, new() { Name = "Features" }).First.ClickAsync();
        Assert.EndsWith("#features", page.Url, StringComparison.Ordinal);
        Assert.Empty(consoleErrors);
    }

    [Fact]
    public async Task Landing_page_fits_a_phone_screen()
    {
        var (page, consoleErrors) = await browser.NewPageAsync(app.BaseUrl, width: 390, height: 844);

        await page.GotoAsync("/");

        var overflow = await page.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
        Assert.True(overflow <= 0, $"the page is {overflow}px wider than the phone's screen");
        Assert.True(await page.GetByRole(AriaRole.Heading, new() { Level = 1 }).IsVisibleAsync());
        await Browser.ScreenshotAsync(page, "landing-phone");
        Assert.Empty(consoleErrors);
    }

    [Fact]
    public async Task Unknown_address_shows_the_friendly_404_page()
    {
        var (page, _) = await browser.NewPageAsync(app.BaseUrl);

        var response = await page.GotoAsync("/no-such-page");

        Assert.Equal(404, response!.Status);
        Assert.Equal("Page not found", (await page.GetByRole(AriaRole.Heading, new() { Level = 1 }).InnerTextAsync()).Trim());
        await Browser.ScreenshotAsync(page, "not-found");
    }
}
