using Microsoft.Playwright;

namespace AiGate.E2E.Infrastructure;

/// <summary>Browser steps that several flows share (use with <c>using static</c>).</summary>
public static class Steps
{
    /// <summary>Opens the mailbox and waits (the outbox job is triggered on commit) until the message is there.</summary>
    public static async Task<ILocator> OpenMailAsync(IPage page, string name)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await page.GotoAsync("/Admin/Mailbox");
            var mail = page.GetByRole(AriaRole.Article, new() { Name = name });
            if (await mail.CountAsync() > 0) return mail.First;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No mail '{name}' in the mailbox after 30 s.");
            await Task.Delay(500);
        }
    }

    /// <summary>Opens the login page and logs in (callers check where they land).</summary>
    public static async Task LogInAsync(IPage page, string email, string password)
    {
        await page.GotoAsync("/Account/Login");
        await page.GetByLabel("E-mail", new() { Exact = true }).FillAsync(email);
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
    }

    /// <summary>Waits for the page's h1 and checks its text.</summary>
    public static async Task Expect(IPage page, string heading)
    {
        var h1 = page.GetByRole(AriaRole.Heading, new() { Level = 1 });
        await h1.WaitForAsync();
        Assert.Equal(heading, (await h1.InnerTextAsync()).Trim());
    }
}
