using Microsoft.Playwright;

namespace AiGate.E2E.Infrastructure;

/// <summary>
/// Headless Chromium from Debian's `chromium` package, driven by Playwright (which cannot download
/// browsers here). The path comes from AIGATE_CHROMIUM, default /usr/bin/chromium.
/// </summary>
public sealed class Browser : IAsyncLifetime
{
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        var executable = Environment.GetEnvironmentVariable("AIGATE_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";
        if (!File.Exists(executable))
            throw new FileNotFoundException("Chromium is not installed; scripts/test.sh installs Debian's chromium package.", executable);
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = executable,
            Headless = true,
            // Root cannot use Chromium's sandbox; the network flags stop it calling home on a closed network.
            Args = [.. Environment.UserName == "root" ? ["--no-sandbox"] : Array.Empty<string>(),
                "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
        });
    }

    /// <summary>A fresh context (cookies, storage) per test; console errors are collected for assertions.</summary>
    /// <param name="ignoreHttpsErrors">For a test's TLS edge, whose certificate is self-signed.</param>
    public async Task<(IPage Page, List<string> ConsoleErrors)> NewPageAsync(Uri baseUrl, int width = 1280, int height = 800, bool ignoreHttpsErrors = false)
    {
        var context = await _browser!.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseUrl.ToString(),
            IgnoreHTTPSErrors = ignoreHttpsErrors,
            ViewportSize = new ViewportSize { Width = width, Height = height },
        });
        var page = await context.NewPageAsync();
        // A freshly started app compiles each page on its first request, and CI runs these tests beside the in-process
        // suite on two cores: a first visit has taken longer than Playwright's default 30 s (a navigation to /billing did).
        page.SetDefaultTimeout(90_000);
        var errors = new List<string>();
        page.Console += (_, message) => { if (message.Type == "error") errors.Add(message.Text); };
        page.PageError += (_, error) => errors.Add(error);
        return (page, errors);
    }

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Paths.Screenshots, name + ".png"), FullPage = true });

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
    }
}
