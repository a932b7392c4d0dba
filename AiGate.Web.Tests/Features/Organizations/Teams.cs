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
    public const string Password = "a long enough passphrase";

    /// <summary>A new team with one member per role given (the first role given should be <see cref="OrgRole.Owner"/>).</summary>
    public static async Task<Team> CreateTeamAsync(this AccountsApp app, string name, params OrgRole[] roles)
    {
        var orgId = Guid.CreateVersion7();
        var members = new List<TeamMember>();
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            db.Add(new Organization { Id = orgId, Name = name, Personal = false, CreatedAt = DateTimeOffset.UtcNow });
            await db.SaveChangesAsync();
        }
        foreach (var role in roles)
        {
            var email = $"{OrgRoles.Name(role)}-{Guid.NewGuid():N}@example.com";
            var user = await app.CreateUserAsync(email, Password);
            await app.AddMemberAsync(orgId, user.Id, role, makeCurrent: true);
            var session = app.NewSession();
            var login = await session.LogInAsync(email, Password);
            Assert.Equal("/dashboard", login.Headers.Location?.OriginalString);
            members.Add(new TeamMember(role, user.Id, email, session));
        }
        return new Team(orgId, name, members);
    }

    /// <summary>Adds a membership row and, when asked, makes the organization the user's current one (as the switcher does).</summary>
    public static async Task AddMemberAsync(this AccountsApp app, Guid orgId, Guid userId, OrgRole role, bool makeCurrent)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        db.Add(new OrgMember { OrgId = orgId, UserId = userId, Role = role, JoinedAt = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync();
        if (makeCurrent)
            await db.Users.Where(u => u.Id == userId).ExecuteUpdateAsync(s => s.SetProperty(u => u.CurrentOrgId, orgId));
    }

    /// <summary>A key of <paramref name="orgId"/> created by <paramref name="createdBy"/>, through the app's own issuer.</summary>
    public static async Task<(Guid Id, string Secret)> IssueKeyAsync(this AccountsApp app, Guid orgId, Guid createdBy, string name)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var (key, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>()
            .IssueAsync(orgId, createdBy, name, new KeyLimits(), CancellationToken.None);
        return (key.Id, secret);
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
