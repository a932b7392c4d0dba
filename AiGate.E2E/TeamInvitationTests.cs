using System.Text.Json;
using AiGate.E2E.Infrastructure;
using Microsoft.Playwright;
using static AiGate.E2E.Infrastructure.Steps;

namespace AiGate.E2E;

/// <summary>
/// Organizations (issue 17) end to end: the owner invites an address from the Team page; the invitee opens the link from
/// the local mailbox, signs up from the invitation page, confirms, logs in and lands back on the invitation, accepts,
/// creates a key and calls the API with the official openai npm package; the owner sees that call in the request log.
/// Screenshots: team-01-pending-invite.png, team-02-invite-page.png, team-03-accepted.png, team-04-owner-request-log.png.
/// </summary>
public sealed class TeamInvitationTests(RunningApp app, Browser browser) : IClassFixture<RunningApp>, IClassFixture<Browser>
{
    [Fact]
    public async Task Owner_invites_the_invitee_signs_up_from_the_mail_accepts_calls_the_api_and_the_owner_sees_the_call()
    {
        const string password = "a long enough passphrase";
        var ownerEmail = $"e2e-owner-{Guid.NewGuid():N}@example.com";
        var inviteeEmail = $"e2e-invitee-{Guid.NewGuid():N}@example.com";
        await app.RunVerbForOutputAsync("create-user", "--email", ownerEmail, "--password", password);
        await app.RunVerbForOutputAsync("grant-credits", "--email", ownerEmail, "--usd", "5", "--reason", "e2e team");

        // The owner renames their organization and invites the address as a member.
        var (owner, ownerErrors) = await browser.NewPageAsync(app.BaseUrl, height: 1000);
        await LogInAsync(owner, ownerEmail, password);
        await Expect(owner, "Dashboard");
        await owner.GetByRole(AriaRole.Link, new() { Name = "Team", Exact = true }).First.ClickAsync();
        await owner.GetByLabel("New name", new() { Exact = true }).FillAsync("Acme Labs");
        await owner.GetByRole(AriaRole.Button, new() { Name = "Rename" }).ClickAsync();
        await Expect(owner, "Acme Labs");
        await owner.GetByLabel("E-mail", new() { Exact = true }).FillAsync(inviteeEmail);
        await owner.GetByLabel("Role", new() { Exact = true }).SelectOptionAsync("member");
        await owner.GetByRole(AriaRole.Button, new() { Name = "Send invitation" }).ClickAsync();
        await Assertions.Expect(owner.GetByTestId("team-status")).ToContainTextAsync($"Invited {inviteeEmail} as member");
        await Assertions.Expect(owner.GetByTestId("invitations")).ToContainTextAsync(inviteeEmail);
        await Assertions.Expect(owner.GetByTestId("members")).ToContainTextAsync(ownerEmail);
        await Browser.ScreenshotAsync(owner, "team-01-pending-invite");

        // The invitee opens the link from the mail: the organization's name, and a way to sign up that comes back here.
        var (invitee, inviteeErrors) = await browser.NewPageAsync(app.BaseUrl);
        var mail = await OpenMailAsync(invitee, $"{ownerEmail} invited you to Acme Labs on AiGate to {inviteeEmail}");
        await mail.GetByRole(AriaRole.Link, new() { Name = "Accept the invitation" }).ClickAsync();
        await Expect(invitee, "Join Acme Labs");
        await Browser.ScreenshotAsync(invitee, "team-02-invite-page");
        await invitee.GetByTestId("invite-signup").ClickAsync();
        await Expect(invitee, "Create your account");
        await invitee.GetByLabel("E-mail", new() { Exact = true }).FillAsync(inviteeEmail);
        await invitee.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await invitee.GetByLabel("Confirm password", new() { Exact = true }).FillAsync(password);
        await invitee.GetByRole(AriaRole.Button, new() { Name = "Sign up" }).ClickAsync();
        await Expect(invitee, "Check your inbox");
        var confirmation = await OpenMailAsync(invitee, $"Confirm your e-mail address for AiGate to {inviteeEmail}");
        await confirmation.GetByRole(AriaRole.Link, new() { Name = "Confirm your e-mail" }).ClickAsync();
        await Expect(invitee, "E-mail confirmed");
        await invitee.GetByRole(AriaRole.Link, new() { Name = "Log in" }).Last.ClickAsync();
        await invitee.GetByLabel("E-mail", new() { Exact = true }).FillAsync(inviteeEmail);
        await invitee.GetByLabel("Password", new() { Exact = true }).FillAsync(password);
        await invitee.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();

        // Back on the invitation, now signed in with the invited address: accept.
        await Expect(invitee, "Join Acme Labs");
        await invitee.GetByTestId("invite-accept").ClickAsync();
        await Expect(invitee, "Acme Labs");
        await Assertions.Expect(invitee.GetByTestId("team-status")).ToContainTextAsync("Welcome to Acme Labs: you joined as member.");
        await Assertions.Expect(invitee.GetByTestId("my-role")).ToHaveTextAsync("member");
        await Browser.ScreenshotAsync(invitee, "team-03-accepted");

        // A key in the organization, and a call with the official openai npm package, paid from the organization's balance.
        await invitee.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Keys", Exact = true }).ClickAsync();
        await Expect(invitee, "API keys");
        await invitee.GetByLabel("Name", new() { Exact = true }).FillAsync("invitee laptop");
        await invitee.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        var key = (await invitee.GetByTestId("new-key").InnerTextAsync()).Trim();
        var node = await ChildProcess.NodeAsync("chat.mjs", app.BaseUrl.ToString(), key, "echo/echo-1", "hello from the team");
        Assert.True(node.ExitCode == 0, $"{node}\n{app.Log}");
        Assert.Equal("Echo: hello from the team", JsonDocument.Parse(node.Output).RootElement.GetProperty("content").GetString());

        // The owner sees the call in the organization's request log (usage lands in batches: reload until it is there).
        await owner.GotoAsync("/activity/requests");
        var row = owner.GetByRole(AriaRole.Row).Filter(new() { HasText = "invitee laptop" });
        for (var attempt = 0; attempt < 50 && await row.CountAsync() == 0; attempt++)
        {
            await Task.Delay(200);
            await owner.ReloadAsync();
        }
        await Assertions.Expect(row).ToHaveCountAsync(1);
        await Assertions.Expect(row).ToContainTextAsync("echo/echo-1");
        await Browser.ScreenshotAsync(owner, "team-04-owner-request-log");

        // ... and on the Activity page grouped by member: the invitee's call under their own address, one request.
        await owner.GotoAsync("/activity?period=today&group=member");
        var memberRow = owner.GetByTestId("table-requests").GetByTestId("row").Filter(new() { HasText = inviteeEmail });
        await Assertions.Expect(memberRow).ToHaveCountAsync(1);
        await Assertions.Expect(memberRow.Locator("td").First).ToHaveTextAsync("1");
        await Browser.ScreenshotAsync(owner, "team-05-owner-activity-by-member");

        Assert.Empty(ownerErrors);
        Assert.Empty(inviteeErrors);
    }
}
