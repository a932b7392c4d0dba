using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Usage;

/// <summary>
/// Usage per member of a team (issue 17): the member filter and grouping of <see cref="UsageQueries"/> and <see cref="RequestLog"/>,
/// the Activity pages and the dashboard as owner and as plain member, <c>/api/v1/usage</c> with an owner's and a member's key,
/// against random raw rows (seeded) compared with sums computed here from the rows themselves. Every team also has usage in
/// another organization (the owner's personal one, with keys the same owner created) that must never appear.
/// </summary>
public sealed partial class MemberUsageTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    private static DateOnly Today => DateOnly.FromDateTime(DateTime.UtcNow);

    /// <summary>A team of an owner, a plain member and a key whose creator is no longer a user, each with usage; and the owner's personal usage.</summary>
    private sealed record Team(Guid OrgId, Guid Owner, string OwnerEmail, WebSession OwnerSession, Guid Member, string MemberEmail, WebSession MemberSession,
        Guid[] OwnerKeys, Guid[] MemberKeys, Guid FormerKey, Guid FormerCreator, string OwnerSecret, string MemberSecret, List<RawUsage> Rows);

    private async Task<Team> TeamAsync(int seed)
    {
        var rng = new Random(seed);
        var (owner, ownerSession) = await app.SignedInAsync("owner");
        var (member, memberSession) = await app.SignedInAsync("member");
        var ownerEmail = (await app.Database.ScalarAsync<string>($"select email from users where id = '{owner}'"))!;
        var memberEmail = (await app.Database.ScalarAsync<string>($"select email from users where id = '{member}'"))!;
        Guid orgId;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            orgId = await scope.ServiceProvider.GetRequiredService<OrgContext>().CreateAsync(owner, $"Team {seed}", personal: false, CancellationToken.None);
            var db = scope.ServiceProvider.GetRequiredService<AiGate.Web.Data.AppDbContext>();
            db.Add(new OrgMember { OrgId = orgId, UserId = member, Role = OrgRole.Member, JoinedAt = DateTimeOffset.UtcNow, MonthlyBudgetMicros = 900_000_000 });
            await db.SaveChangesAsync();
        }
        await app.Database.ExecuteAsync($"update users set current_org_id = '{orgId}' where id = '{member}'");

        async Task<(Guid Id, string Secret)> Issue(Guid org, Guid creator)
        {
            await using var scope = app.Services.CreateAsyncScope();
            var (key, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssueAsync(org, creator, "k", new KeyLimits(), CancellationToken.None);
            return (key.Id, secret);
        }
        var ownerKeys = new[] { await Issue(orgId, owner), await Issue(orgId, owner) };
        var memberKeys = new[] { await Issue(orgId, member), await Issue(orgId, member) };
        var former = await Issue(orgId, member);
        var formerCreator = Guid.NewGuid();
        // A key whose creator is no longer a user: created_by names nobody.
        await app.Database.ExecuteAsync($"update api_keys set created_by = '{formerCreator}' where id = '{former.Id}'");
        var personalKey = await Issue(owner, owner);

        var now = DateTimeOffset.UtcNow;
        var rows = UsageData.Generate(rng, [(orgId, [.. ownerKeys.Select(k => k.Id)]), (orgId, [.. memberKeys.Select(k => k.Id)]), (orgId, [former.Id]),
            (owner, [personalKey.Id])], 3000, 20, now);
        await UsageData.InsertAsync(app.Database, rows);
        await app.Services.GetRequiredService<UsageRollup>().RunAsync(CancellationToken.None);
        // Rows the rollup has not reached: the reads add them from raw events.
        var late = UsageData.Generate(rng, [(orgId, [.. memberKeys.Select(k => k.Id)]), (owner, [personalKey.Id]), (orgId, [ownerKeys[0].Id])], 200, 3, now);
        await UsageData.InsertAsync(app.Database, late);
        rows.AddRange(late);
        return new Team(orgId, owner, ownerEmail, ownerSession, member, memberEmail, memberSession, [.. ownerKeys.Select(k => k.Id)],
            [.. memberKeys.Select(k => k.Id)], former.Id, formerCreator, ownerKeys[0].Secret, memberKeys[0].Secret, rows);
    }

    private static UsageTotals Sum(IEnumerable<RawUsage> rows) =>
        rows.Aggregate(default(UsageTotals), (t, r) => t + new UsageTotals(1, r.Prompt, r.Completion, r.Cached, r.Cost, r.Status >= 400 ? 1 : 0));

    private static IEnumerable<RawUsage> In(IEnumerable<RawUsage> rows, Guid org, IEnumerable<Guid> keys, DateOnly first) =>
        rows.Where(r => r.UserId == org && keys.Contains(r.KeyId) && DateOnly.FromDateTime(r.At.UtcDateTime) >= first);

    [Fact]
    public async Task Member_grouping_adds_up_to_the_org_total_and_the_member_filter_keeps_only_their_keys_never_another_orgs()
    {
        var t = await TeamAsync(1701);
        var queries = app.Services.GetRequiredService<UsageQueries>();
        var log = app.Services.GetRequiredService<RequestLog>();
        var first = Today.AddDays(-25);
        var teamRows = t.Rows.Where(r => r.UserId == t.OrgId).ToList();

        var byMember = await queries.SummarizeDaysAsync(t.OrgId, first, Today, UsageGrouping.Member, CancellationToken.None);
        var all = await queries.SummarizeDaysAsync(t.OrgId, first, Today, UsageGrouping.Model, CancellationToken.None);
        Assert.Equal(Sum(teamRows), all.Total with { ByokRequests = 0 });
        Assert.Equal(all.Total, byMember.Groups.Aggregate(default(UsageTotals), (s, g) => s + g.Totals));
        Assert.Equal(3, byMember.Groups.Count);
        var ownerGroup = Assert.Single(byMember.Groups, g => g.MemberId == t.Owner);
        Assert.Equal(t.OwnerEmail, ownerGroup.MemberEmail);
        Assert.Equal(Sum(In(teamRows, t.OrgId, t.OwnerKeys, first)), ownerGroup.Totals);   // the owner's personal usage is not the team's
        var memberGroup = Assert.Single(byMember.Groups, g => g.MemberId == t.Member);
        Assert.Equal(t.MemberEmail, memberGroup.MemberEmail);
        Assert.Equal(Sum(In(teamRows, t.OrgId, t.MemberKeys, first)), memberGroup.Totals);
        var formerGroup = Assert.Single(byMember.Groups, g => g.MemberId == t.FormerCreator);
        Assert.Null(formerGroup.MemberEmail);
        Assert.Equal(Sum(In(teamRows, t.OrgId, [t.FormerKey], first)), formerGroup.Totals);
        // Groups by cost, highest first.
        Assert.True(byMember.Groups.Zip(byMember.Groups.Skip(1)).All(p => p.First.Totals.CostMicros >= p.Second.Totals.CostMicros));

        // The member filter: every grouping of a member's usage is theirs alone, over rollups (a range of days) and raw rows (under a day).
        foreach (var grouping in new[] { UsageGrouping.Model, UsageGrouping.Key, UsageGrouping.Day, UsageGrouping.Member })
        {
            var mine = await queries.SummarizeDaysAsync(t.OrgId, first, Today, grouping, CancellationToken.None, memberId: t.Member);
            Assert.Equal(memberGroup.Totals, mine.Total);
        }
        var keyGroups = await queries.SummarizeDaysAsync(t.OrgId, first, Today, UsageGrouping.Key, CancellationToken.None, memberId: t.Member);
        Assert.All(keyGroups.Groups, g => Assert.Contains(g.KeyId!.Value, t.MemberKeys));
        var hourAgo = DateTimeOffset.UtcNow.AddHours(-1);
        var recent = await queries.SummarizeAsync(t.OrgId, hourAgo, DateTimeOffset.UtcNow.AddMinutes(1), UsageGrouping.Model, CancellationToken.None, memberId: t.Member);
        Assert.Equal(Sum(teamRows.Where(r => t.MemberKeys.Contains(r.KeyId) && r.At >= hourAgo)), recent.Total);
        // The owner as a member filter: the team keys they created, never their personal organization's usage with their own keys.
        var ownerOnly = await queries.SummarizeDaysAsync(t.OrgId, first, Today, UsageGrouping.Model, CancellationToken.None, memberId: t.Owner);
        Assert.Equal(ownerGroup.Totals, ownerOnly.Total);
        // Someone of another organization as the member: nothing.
        var personal = await queries.SummarizeDaysAsync(t.Owner, first, Today, UsageGrouping.Model, CancellationToken.None, memberId: t.Member);
        Assert.Equal(default, personal.Total);

        // The request log: the member filter, the member of each row, and a member's lookup of another member's call.
        var filter = new RequestLogFilter(UsageQueries.StartOfDay(first), UsageQueries.StartOfDay(Today.AddDays(1)), MemberId: t.Member);
        var streamed = new List<RequestLogRow>();
        await foreach (var row in log.StreamAsync(t.OrgId, filter, CancellationToken.None)) streamed.Add(row);
        Assert.Equal(memberGroup.Totals.Requests, streamed.Count);
        Assert.All(streamed, r => Assert.Equal((t.Member, t.MemberEmail), (r.MemberId!.Value, r.MemberEmail!)));
        var (page, _) = await log.PageAsync(t.OrgId, filter with { MemberId = null }, null, CancellationToken.None);
        Assert.Contains(page, r => r.MemberLabel == "former member" || r.MemberId == t.Owner);
        var ownerCall = await app.Database.ScalarAsync<string>($"select request_id from usage_events where key_id = '{t.OwnerKeys[0]}' limit 1");
        var memberCall = await app.Database.ScalarAsync<string>($"select request_id from usage_events where key_id = '{t.MemberKeys[0]}' limit 1");
        Assert.Null(await log.FindAsync(t.OrgId, ownerCall!, CancellationToken.None, t.Member));
        Assert.NotNull(await log.FindAsync(t.OrgId, memberCall!, CancellationToken.None, t.Member));
        Assert.NotNull(await log.FindAsync(t.OrgId, ownerCall!, CancellationToken.None));
    }

    [Fact]
    public async Task Activity_as_owner_groups_by_member_and_as_a_member_shows_only_their_own_usage_without_the_member_choice()
    {
        var t = await TeamAsync(1702);
        var first = Today.AddDays(-25);
        var range = $"period=custom&from={Day(first)}&to={Day(Today)}";
        var teamRows = t.Rows.Where(r => r.UserId == t.OrgId).ToList();
        var memberTotal = Sum(In(teamRows, t.OrgId, t.MemberKeys, first));

        var owner = await t.OwnerSession.TextAsync($"/activity?{range}&group=member");
        Assert.Contains("<option value=\"member\" selected=\"selected\">Member</option>", owner, StringComparison.Ordinal);
        var ownerTable = SpendTable(owner);
        Assert.Equal(Sum(In(teamRows, t.OrgId, t.OwnerKeys, first)).CostMicros, ownerTable[t.OwnerEmail]);
        Assert.Equal(memberTotal.CostMicros, ownerTable[t.MemberEmail]);
        Assert.Equal(Sum(In(teamRows, t.OrgId, [t.FormerKey], first)).CostMicros, ownerTable["former member"]);
        Assert.Equal(Sum(teamRows.Where(r => DateOnly.FromDateTime(r.At.UtcDateTime) >= first)).CostMicros, ownerTable.Values.Sum());
        var ownerLog = await t.OwnerSession.TextAsync($"/activity/requests?from={Day(first)}&to={Day(Today)}&member={t.Member}");
        Assert.Contains("<label for=\"member\">Member</label>", ownerLog, StringComparison.Ordinal);
        Assert.Equal(Math.Min(50, memberTotal.Requests), LogRow().Matches(ownerLog).Count);
        Assert.All(LogMember().Matches(ownerLog), m => Assert.Equal(t.MemberEmail, m.Groups[1].Value));

        var member = await t.MemberSession.TextAsync($"/activity?{range}&group=member");
        Assert.DoesNotContain("value=\"member\"", member, StringComparison.Ordinal);
        var memberTable = SpendTable(member);   // group=member falls back to by model
        Assert.Equal(memberTotal.CostMicros, memberTable.Values.Sum());
        Assert.Contains($"data-testid=\"total-requests\">{memberTotal.Requests.ToString("#,##0", CultureInfo.InvariantCulture)}<", member, StringComparison.Ordinal);
        var memberLog = await t.MemberSession.TextAsync($"/activity/requests?from={Day(first)}&to={Day(Today)}&member={t.Owner}");
        Assert.DoesNotContain("<label for=\"member\">", memberLog, StringComparison.Ordinal);
        Assert.Equal(Math.Min(50, memberTotal.Requests), LogRow().Matches(memberLog).Count);   // the member= of the query is ignored
        var memberIds = (await app.Database.ScalarAsync<string[]>(
            $"select array_agg(request_id) from usage_events where key_id in ('{t.MemberKeys[0]}', '{t.MemberKeys[1]}')"))!;
        Assert.All(LogRow().Matches(memberLog), m => Assert.Contains(m.Groups[1].Value, memberIds));
        var ownerCall = await app.Database.ScalarAsync<string>($"select request_id from usage_events where key_id = '{t.OwnerKeys[0]}' limit 1");
        Assert.Equal(HttpStatusCode.NotFound, (await t.MemberSession.GetAsync($"/activity/requests/{ownerCall}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await t.MemberSession.GetAsync($"/activity/requests/{memberIds[0]}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await t.OwnerSession.GetAsync($"/activity/requests/{memberIds[0]}")).StatusCode);

        // CSV exports follow the same scoping.
        var csv = await t.MemberSession.TextAsync($"/activity/requests?handler=csv&from={Day(first)}&to={Day(Today)}");
        Assert.Equal(memberTotal.Requests, csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length - 1);

        // The dashboard: no organization balance for a member; their own month and the budget set for them.
        var monthStart = new DateOnly(Today.Year, Today.Month, 1);
        var month = Sum(In(teamRows, t.OrgId, t.MemberKeys, monthStart));
        var dashboard = await t.MemberSession.TextAsync("/dashboard");
        Assert.DoesNotContain("data-testid=\"balance-usd\"", dashboard, StringComparison.Ordinal);
        Assert.Contains($"data-testid=\"month-spend\">${AiGate.Web.Features.Credits.Money.UsdDisplay(month.CostMicros)}<", dashboard, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"member-budget\">900.00<", dashboard, StringComparison.Ordinal);
        Assert.Contains($"data-testid=\"member-budget-left\">${AiGate.Web.Features.Credits.Money.UsdDisplay(Math.Max(0, 900_000_000 - month.CostMicros))} left<",
            dashboard, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"balance-usd\"", await t.OwnerSession.TextAsync("/dashboard"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Usage_api_group_by_member_is_the_orgs_for_an_owners_key_and_only_the_members_for_a_members_key()
    {
        var t = await TeamAsync(1703);
        var first = Today.AddDays(-25);
        var teamRows = t.Rows.Where(r => r.UserId == t.OrgId).ToList();
        var url = $"/api/v1/usage?group_by=member&start={Day(first)}&end={Day(Today)}";

        using var ownerApi = Api(t.OwnerSecret);
        var ownerBody = JsonNode.Parse(await ownerApi.GetStringAsync(url))!;
        Assert.Equal("account", (string?)ownerBody["scope"]);
        Assert.Equal("member", (string?)ownerBody["group_by"]);
        var groups = ownerBody["data"]!.AsArray();
        Assert.Equal(3, groups.Count);
        Assert.Equal(Sum(teamRows.Where(r => DateOnly.FromDateTime(r.At.UtcDateTime) >= first)).Requests, (long)ownerBody["total"]!["requests"]!);
        Assert.Equal((long)ownerBody["total"]!["requests"]!, groups.Sum(g => (long)g!["requests"]!));
        var memberGroup = Assert.Single(groups, g => (string?)g!["member_id"] == t.Member.ToString());
        Assert.Equal(t.MemberEmail, (string?)memberGroup!["member_email"]);
        Assert.Equal(Sum(In(teamRows, t.OrgId, t.MemberKeys, first)).Requests, (long)memberGroup["requests"]!);
        Assert.Null((string?)Assert.Single(groups, g => (string?)g!["member_id"] == t.FormerCreator.ToString())!["member_email"]);

        using var memberApi = Api(t.MemberSecret);
        var memberBody = JsonNode.Parse(await memberApi.GetStringAsync(url))!;
        Assert.Equal("member", (string?)memberBody["scope"]);
        var only = Assert.Single(memberBody["data"]!.AsArray());
        Assert.Equal(t.Member.ToString(), (string?)only!["member_id"]);
        Assert.Equal(Sum(In(teamRows, t.OrgId, t.MemberKeys, first)).Requests, (long)memberBody["total"]!["requests"]!);
        var byKey = JsonNode.Parse(await memberApi.GetStringAsync($"/api/v1/usage?group_by=key&start={Day(first)}&end={Day(Today)}"))!;
        Assert.All(byKey["data"]!.AsArray(), g => Assert.Contains(Guid.Parse((string)g!["key_id"]!), t.MemberKeys));
        var csv = await memberApi.GetStringAsync($"/api/v1/usage?format=csv&start={Day(first)}&end={Day(Today)}");
        Assert.Equal(Sum(In(teamRows, t.OrgId, t.MemberKeys, first)).Requests, csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length - 1);

        var bad = await memberApi.GetAsync("/api/v1/usage?group_by=team");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("group_by", (string?)JsonNode.Parse(await bad.Content.ReadAsStringAsync())!["error"]!["param"]);
    }

    private HttpClient Api(string secret)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return client;
    }

    /// <summary>The spend table of the Activity page: each row's label and its cost in micro-USD.</summary>
    private static Dictionary<string, long> SpendTable(string html)
    {
        var start = html.IndexOf("data-testid=\"table-spend\"", StringComparison.Ordinal);
        Assert.True(start >= 0, "no spend table");
        var table = html[start..html.IndexOf("</table>", start, StringComparison.Ordinal)];
        return SpendRow().Matches(table).ToDictionary(m => WebUtility.HtmlDecode(m.Groups[1].Value), m => long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex("data-group=\"([^\"]*)\">.*?data-value=\"(-?\\d+)\"", RegexOptions.Singleline)]
    private static partial Regex SpendRow();

    [GeneratedRegex("data-testid=\"log-row\" data-request-id=\"([^\"]*)\"")]
    private static partial Regex LogRow();

    [GeneratedRegex("data-testid=\"log-member\">([^<]*)<")]
    private static partial Regex LogMember();
}
