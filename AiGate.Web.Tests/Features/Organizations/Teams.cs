using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Organizations;

/// <summary>One person in a test team: who they are and their signed-in browser session.</summary>
public sealed record TeamMember(OrgRole Role, Guid UserId, string Email, WebSession Session);

/// <summary>A team organization (not anyone's personal one) whose members are signed in over HTTP and work in it.</summary>
public sealed record Team(Guid OrgId, string Name, IReadOnlyList<TeamMember> Members)
{
    public TeamMember this[OrgRole role] => Members.First(m => m.Role == role);
}

/// <summary>
/// Teams on any account-test app: users made through the app's <c>UserManager</c> (confirmed e-mails; the trigger gives each
/// a personal organization), an organization with their <see cref="OrgMember"/> rows, and each member signed in through the
/// real login form with the team as their current organization.
/// </summary>
public static class Teams
{
    /// <summary>A new team with one member per role given (the first role given should be <see cref="OrgRole.Owner"/>).</summary>
    public static async Task<Team> CreateTeamAsync(this AccountsApp app, string name, params OrgRole[] roles)
    {
        var orgId = await app.CreateOrganizationAsync(name);
        var members = new List<TeamMember>();
        foreach (var role in roles)
        {
            var (userId, email, session) = await app.UserAsync(OrgRoles.Name(role));
            await app.AddMemberAsync(orgId, userId, role, makeCurrent: true);
            members.Add(new TeamMember(role, userId, email, session));
        }
        return new Team(orgId, name, members);
    }

    public static async Task<ApiKey> KeyAsync(this AccountsApp app, Guid id)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Set<ApiKey>().AsNoTracking().SingleAsync(k => k.Id == id);
    }

    /// <summary>POSTs form fields with the antiforgery token of the session's own <c>/keys</c> page (a page every role may open).</summary>
    public static async Task<HttpResponseMessage> PostAsync(WebSession session, string url, IReadOnlyDictionary<string, string> fields)
    {
        var form = new Dictionary<string, string>(fields) { ["__RequestVerificationToken"] = await session.AntiforgeryTokenAsync("/keys") };
        return await session.Http.PostAsync(url, new FormUrlEncodedContent(form));
    }

    /// <summary>The path a redirect points at ("" when the answer is not a redirect).</summary>
    public static string RedirectPath(HttpResponseMessage response) =>
        response.StatusCode == HttpStatusCode.Redirect && response.Headers.Location is { } l
            ? (l.IsAbsoluteUri ? l.AbsolutePath : Regex.Replace(l.OriginalString, @"\?.*$", ""))
            : "";
}
