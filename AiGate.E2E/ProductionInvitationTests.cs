using System.Text.RegularExpressions;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// An invitation the way it happens in production (issue 17): the app in Production behind a TLS edge (Secure
/// <c>__Host-</c> cookies, antiforgery, forwarded headers), the invitation mailed through Resend on another origin. The
/// link must be the public https address, survive the log-in detour, and the acceptance POST must pass behind the edge.
/// Screenshot: production-invite-01-accepted.
/// </summary>
public sealed partial class ProductionInvitationTests(ProductionStack stack, Browser browser) : IClassFixture<ProductionStack>, IClassFixture<Browser>
{
    [Fact]
    public async Task An_invitation_mailed_through_Resend_is_accepted_over_the_public_https_address()
    {
        const string password = "a long enough passphrase";
        var ownerEmail = $"e2e-prod-owner-{Guid.NewGuid():N}@example.com";
        var inviteeEmail = $"e2e-prod-invitee-{Guid.NewGuid():N}@example.com";
        await stack.App.RunVerbForOutputAsync("create-user", "--email", ownerEmail, "--password", password);
        await stack.App.RunVerbForOutputAsync("create-user", "--email", inviteeEmail, "--password", password);

        var (owner, ownerErrors) = await browser.NewPageAsync(stack.BaseUrl, ignoreHttpsErrors: true);
        await LogInAsync(owner, ownerEmail, password);
        await LandedAsync(owner, "**/dashboard", "production-invite-00-owner-login");
        await owner.GotoAsync("/organization");
        await owner.GetByLabel("E-mail", new() { Exact = true }).FillAsync(inviteeEmail);
        await owner.GetByLabel("Role", new() { Exact = true }).SelectOptionAsync("billing");
        await owner.GetByRole(AriaRole.Button, new() { Name = "Send invitation" }).ClickAsync();
        await Assertions.Expect(owner.GetByTestId("team-status")).ToContainTextAsync($"Invited {inviteeEmail} as billing");

        // The mail went to Resend (the outbox sends it in the background): its link is the public https address.
        string? link = null;
        for (var attempt = 0; attempt < 300 && link is null; attempt++)
        {
            link = stack.Resend.Delivered.Values
                .Where(m => m.GetProperty("to").ToString().Contains(inviteeEmail, StringComparison.Ordinal))
                .Select(m => InviteLink().Match(m.GetProperty("html").GetString() ?? "") is { Success: true } found ? found.Value : null)
                .FirstOrDefault(l => l is not null);
            if (link is null) await Task.Delay(200);
        }
        Assert.NotNull(link);
        var publicBase = stack.BaseUrl.GetLeftPart(UriPartial.Authority);
        Assert.StartsWith($"{publicBase}/organization/invite?token=", System.Net.WebUtility.HtmlDecode(link), StringComparison.Ordinal);

        // The invitee opens it signed out, logs in from the invitation and comes back to it, then accepts.
        var (invitee, inviteeErrors) = await browser.NewPageAsync(stack.BaseUrl, ignoreHttpsErrors: true);
        await invitee.GotoAsync(System.Net.WebUtility.HtmlDecode(link));
        await invitee.GetByTestId("invite-login").ClickAsync();
        await invitee.GetByLabel("E-mail", new() { Exact = true }).FillAsync(inviteeEmail);
        await invitee.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await invitee.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await invitee.GetByTestId("invite-accept").ClickAsync();
        await Assertions.Expect(invitee.GetByTestId("team-status")).ToContainTextAsync("you joined as billing");
        Assert.StartsWith(publicBase + "/organization", invitee.Url, StringComparison.Ordinal);
        await Browser.ScreenshotAsync(invitee, "production-invite-01-accepted");

        Assert.True(ownerErrors.Count == 0, string.Join("\n", ownerErrors));
        Assert.True(inviteeErrors.Count == 0, string.Join("\n", inviteeErrors));
    }

    /// <summary>
    /// Waits for the page to land on <paramref name="url"/>; when it does not, the failure says where it is and what it shows
    /// (CI saw this wait time out once under load, and the report had nothing to go on), with a screenshot.
    /// </summary>
    private static async Task LandedAsync(IPage page, string url, string screenshot)
    {
        try
        {
            await page.WaitForURLAsync(url);
        }
        catch (TimeoutException ex)
        {
            await Browser.ScreenshotAsync(page, screenshot);
            var text = await page.Locator("body").InnerTextAsync(new() { Timeout = 5_000 });
            throw new TimeoutException($"Expected {url}, still at {page.Url}; the page says: {(text.Length > 600 ? text[..600] : text)}", ex);
        }
    }

    [GeneratedRegex("https?://[^\"'<>\\s]+/organization/invite\\?token=[A-Za-z0-9_\\-]+")]
    private static partial Regex InviteLink();
}
