using System.Globalization;
using System.Net.Http.Headers;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// Organizations for tests (issue 17): rows written straight to the database, as the Team pages would write them;
/// keys issued through the app's own issuer under the member who creates them; people signed in through the login form.
/// </summary>
public static class TeamOrgs
{
    public const string Password = "a long enough passphrase";

    /// <summary>A non-personal organization (a fresh id, in no users row) with no members yet.</summary>
    public static async Task<Guid> CreateOrganizationAsync(this AiGateApp app, string? name = null)
    {
        var orgId = Guid.CreateVersion7();
        await app.Database.ExecuteAsync(
            $"insert into organizations (id, name, personal, created_at) values ('{orgId}', '{(name ?? $"Team {orgId:N}").Replace("'", "''")}', false, now())");
        return orgId;
    }

    /// <summary>A non-personal organization owned by <paramref name="ownerId"/>.</summary>
    public static async Task<Guid> CreateTeamAsync(this AiGateApp app, Guid ownerId)
    {
        var orgId = await app.CreateOrganizationAsync();
        await app.AddMemberAsync(orgId, ownerId, OrgRole.Owner);
        return orgId;
    }

    /// <summary>
    /// Adds a member with a role and the caps an admin set for them (null: none); <paramref name="makeCurrent"/> makes the
    /// organization their current one, as the switcher does.
    /// </summary>
    public static Task AddMemberAsync(this AiGateApp app, Guid orgId, Guid userId, OrgRole role = OrgRole.Member, long? budgetMicros = null,
        int? requestsPerMinute = null, long? tokensPerMinute = null, bool makeCurrent = false) =>
        app.Database.ExecuteAsync($"""
            insert into organization_members (org_id, user_id, role, monthly_budget_micros, requests_per_minute, tokens_per_minute, joined_at)
            values ('{orgId}', '{userId}', '{OrgRoles.Name(role)}', {Sql(budgetMicros)}, {Sql(requestsPerMinute)}, {Sql(tokensPerMinute)}, now());
            {(makeCurrent ? $"update users set current_org_id = '{orgId}' where id = '{userId}';" : "")}
            """);

    /// <summary>A key of <paramref name="orgId"/> created by <paramref name="createdBy"/>, through the app's own issuer.</summary>
    public static async Task<(Guid Id, string Secret)> IssueKeyAsync(this AiGateApp app, Guid orgId, Guid createdBy, string name, KeyLimits? limits = null)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var (key, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>()
            .IssueAsync(orgId, createdBy, name, limits ?? new KeyLimits(), CancellationToken.None);
        return (key.Id, secret);
    }

    /// <summary>A key of the organization created by the member; and an HTTP client sending it.</summary>
    public static async Task<(HttpClient Client, string Key)> MemberClientAsync(this AiGateApp app, Guid orgId, Guid memberId, KeyLimits? limits = null)
    {
        var (_, secret) = await app.IssueKeyAsync(orgId, memberId, "member key", limits);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return (client, secret);
    }

    /// <summary>A confirmed user signed in on a new session (their personal organization is current).</summary>
    public static async Task<(Guid Id, string Email, WebSession Session)> UserAsync(this AccountsApp app, string prefix)
    {
        var email = $"{prefix}-{Guid.NewGuid():N}@example.com";
        var user = await app.CreateUserAsync(email, Password);
        var session = app.NewSession();
        Assert.Equal("/dashboard", (await session.LogInAsync(email, Password)).Headers.Location?.OriginalString);
        return (user.Id, email, session);
    }

    private static string Sql(long? value) => value is { } v ? v.ToString(CultureInfo.InvariantCulture) : "null";
}
