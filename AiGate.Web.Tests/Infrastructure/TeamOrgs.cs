using System.Net.Http.Headers;
using AiGate.Web.Features.Keys;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// Team organizations for tests of the money paths (issue 17): rows written straight to the database, as the Team pages
/// would write them; keys issued through the app's own issuer under the member who creates them.
/// </summary>
public static class TeamOrgs
{
    /// <summary>A non-personal organization (a fresh id, in no users row) owned by <paramref name="ownerId"/>.</summary>
    public static async Task<Guid> CreateTeamAsync(this AiGateApp app, Guid ownerId)
    {
        var orgId = Guid.CreateVersion7();
        await app.Database.ExecuteAsync($"""
            insert into organizations (id, name, personal, created_at) values ('{orgId}', 'Team {orgId:N}', false, now());
            insert into organization_members (org_id, user_id, role, joined_at) values ('{orgId}', '{ownerId}', 'owner', now());
            """);
        return orgId;
    }

    /// <summary>Adds a member with a role and the caps an admin set for them (null: none).</summary>
    public static Task AddMemberAsync(this AiGateApp app, Guid orgId, Guid userId, string role = "member", long? budgetMicros = null,
        int? requestsPerMinute = null, long? tokensPerMinute = null) =>
        app.Database.ExecuteAsync($"""
            insert into organization_members (org_id, user_id, role, monthly_budget_micros, requests_per_minute, tokens_per_minute, joined_at)
            values ('{orgId}', '{userId}', '{role}', {Sql(budgetMicros)}, {Sql(requestsPerMinute)}, {Sql(tokensPerMinute)}, now())
            """);

    /// <summary>A key of the organization created by the member; and an HTTP client sending it.</summary>
    public static async Task<(HttpClient Client, string Key)> MemberClientAsync(this AiGateApp app, Guid orgId, Guid memberId, KeyLimits? limits = null)
    {
        await using var scope = app.Services.CreateAsyncScope();
        var (_, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>()
            .IssueAsync(orgId, memberId, "member key", limits ?? new KeyLimits(), CancellationToken.None);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return (client, secret);
    }

    private static string Sql(long? value) => value is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "null";
}
