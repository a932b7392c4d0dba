using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Team;

/// <summary>What the team tests do over and over: post a handler of /organization as a browser would, read the page, set up members.</summary>
internal static partial class TeamSteps
{
    /// <summary>POSTs exactly <paramref name="fields"/> (plus the page's antiforgery token) to a handler of the team page.</summary>
    public static async Task<HttpResponseMessage> PostAsync(this WebSession session, string handler, Dictionary<string, string>? fields = null)
    {
        fields ??= [];
        fields["__RequestVerificationToken"] = await session.AntiforgeryTokenAsync("/organization");
        return await session.Http.PostAsync($"/organization?handler={handler}", new FormUrlEncodedContent(fields));
    }

    /// <summary>Posts and follows the redirect back to the page: its HTML (decoded), where the message is.</summary>
    public static async Task<string> PostAndReadAsync(this WebSession session, string handler, Dictionary<string, string>? fields = null)
    {
        var response = await session.PostAsync(handler, fields);
        Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"{handler} answered {(int)response.StatusCode}");
        return WebUtility.HtmlDecode(await session.TextAsync(response.Headers.Location!.OriginalString));
    }

    public static void AssertForbidden(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/Account/AccessDenied", response.Headers.Location?.AbsolutePath);
    }

    public static string? ErrorOn(string html) => ErrorMessage().Match(html) is { Success: true } m ? m.Groups[1].Value : null;

    public static string? StatusOn(string html) => StatusMessage().Match(html) is { Success: true } m ? m.Groups[1].Value : null;

    public static async Task<OrgMember?> MemberAsync(this AccountsApp app, Guid orgId, Guid userId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Set<OrgMember>().AsNoTracking()
            .FirstOrDefaultAsync(m => m.OrgId == orgId && m.UserId == userId);
    }

    public static async Task<List<OrgInvitation>> InvitationsAsync(this AccountsApp app, Guid orgId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Set<OrgInvitation>().AsNoTracking()
            .Where(i => i.OrgId == orgId).OrderBy(i => i.CreatedAt).ToListAsync();
    }

    /// <summary>The token in the latest invitation e-mail to <paramref name="email"/>.</summary>
    public static async Task<string> InviteTokenAsync(this AccountsApp app, string email)
    {
        var link = await app.LinkInMailAsync(email, "organization-invite");
        Assert.StartsWith("/organization/invite?token=", link, StringComparison.Ordinal);
        return Uri.UnescapeDataString(link["/organization/invite?token=".Length..]);
    }

    /// <summary>Accepts through the invitation page as the signed-in user: the page's form, then its POST.</summary>
    public static async Task<HttpResponseMessage> AcceptAsync(this WebSession session, string token)
    {
        var url = $"/organization/invite?token={Uri.EscapeDataString(token)}";
        var html = await session.TextAsync(url);
        var antiforgery = AntiforgeryOn().Match(html);
        Assert.True(antiforgery.Success, $"no antiforgery token on the invitation page: {ErrorOn(html)}");
        return await session.Http.PostAsync(url, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = token, ["__RequestVerificationToken"] = WebUtility.HtmlDecode(antiforgery.Groups[1].Value),
        }));
    }

    [GeneratedRegex("data-testid=\"team-error\">([^<]*)<")]
    private static partial Regex ErrorMessage();

    [GeneratedRegex("data-testid=\"team-status\">([^<]*)<")]
    private static partial Regex StatusMessage();

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryOn();
}
