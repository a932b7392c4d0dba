using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// Streamed calls of every provider kind count against a member's monthly budget (issue 17), a client that walks away
/// mid-stream included: it is billed what was produced, that spend is the member's, and what is left of the budget then
/// bounds the next call (402 member_budget_exceeded, no upstream call) while the organization's balance and ledger agree.
/// </summary>
public sealed class MemberStreamBudgetTests(EveryKindApp app) : IClassFixture<EveryKindApp>
{
    private const long Budget = 1_000;   // µ$ = tokens here: one call of 900 output tokens at most fits, not two
    private const long Grant = 1_000_000;

    public static TheoryData<string> Kinds => new() { "openai", "anthropic", "gemini" };

    private static string ModelOf(string kind) => kind switch
    {
        "openai" => StreamBillingApp.Gpt,
        "anthropic" => EveryKindApp.MeteredClaude,
        _ => EveryKindApp.MeteredGemini,
    };

    private int UpstreamCalls(string kind) => kind switch
    {
        "openai" => app.OpenAi.ChatRequests,
        "anthropic" => app.Anthropic.Requests.Count(r => r.PathAndQuery == "/v1/messages"),
        _ => app.GeminiFake.Requests.Count(r => r.PathAndQuery.StartsWith("/v1beta/models/", StringComparison.Ordinal)),
    };

    private static HttpRequestMessage Stream(string kind, string text, long maxTokens) => new(HttpMethod.Post, "/api/v1/chat/completions")
    {
        Content = JsonContent.Create(new Dictionary<string, object?>
        {
            ["model"] = ModelOf(kind), ["stream"] = true, ["max_tokens"] = maxTokens,
            ["messages"] = new[] { new { role = "user", content = text } },
        }),
    };

    private Task<long> MemberChargedAsync(Guid org, Guid member) => app.Database.ScalarAsync<long>($"""
        select coalesce(sum(u.cost_micros), 0)::bigint from usage_events u join api_keys k on k.id = u.key_id
        where u.user_id = '{org}' and k.created_by = '{member}'
        """);

    private Task<long> MemberSpentAsync(Guid org, Guid member) =>
        app.Database.ScalarAsync<long>($"select coalesce((select spent_micros from member_budgets where org_id = '{org}' and user_id = '{member}'), 0)");

    private async Task<long> UsageRowsAsync(Guid org) => await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{org}'");

    [Theory, MemberData(nameof(Kinds))]
    public async Task A_members_streams_and_one_they_walk_away_from_are_billed_against_their_budget(string kind)
    {
        app.OpenAi.Reset();
        app.OpenAi.Reply = LongReply.Text;
        app.OpenAi.Mode = FakeOpenAi.Behaviour.StallHalfway;
        var owner = await app.CreateUserAsync();
        var org = await app.CreateTeamAsync(owner);
        var member = await app.CreateUserAsync();
        await app.AddMemberAsync(org, member, budgetMicros: Budget);
        await app.GrantAsync(org, Grant);
        var (client, _) = await app.MemberClientAsync(org, member);

        // 1. The member walks away half-way through a long stream: billed what was produced, counted as theirs.
        using (var response = await client.SendAsync(Stream(kind, "Write something LONG please (STALL)", 900), HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            var deltas = 0;
            while (deltas < 5 && await reader.ReadLineAsync() is { } line)
                if (line.StartsWith("data: {", StringComparison.Ordinal) && line.Contains("\"content\"", StringComparison.Ordinal)) deltas++;
            Assert.Equal(5, deltas);
        }
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (await UsageRowsAsync(org) == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        await app.WaitForUsageAsync();
        var walkedAway = await MemberChargedAsync(org, member);
        Assert.InRange(walkedAway, 1, Budget);
        Assert.Equal(walkedAway, await MemberSpentAsync(org, member));

        // 2. A stream that may cost more than what is left of the budget is refused for the budget, before any upstream call.
        var calls = UpstreamCalls(kind);
        using (var refused = await client.SendAsync(Stream(kind, "hi", Budget - walkedAway + 1)))
        {
            Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
            var error = (await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
            Assert.Equal("member_budget_exceeded", error["code"]!.GetValue<string>());
        }
        Assert.Equal(calls, UpstreamCalls(kind));

        // 3. A stream that fits is served to its end and counted too.
        app.OpenAi.Mode = FakeOpenAi.Behaviour.Ok;
        app.OpenAi.Reply = "Hello from the fake upstream";
        using (var served = await client.SendAsync(Stream(kind, "hi", 50)))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            Assert.Contains("[DONE]", await served.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        deadline = DateTime.UtcNow.AddSeconds(15);
        while (await UsageRowsAsync(org) < 2 && DateTime.UtcNow < deadline) await Task.Delay(50);
        await app.WaitForUsageAsync();
        var charged = await MemberChargedAsync(org, member);
        Assert.True(charged > walkedAway);
        Assert.InRange(charged, 1, Budget);
        Assert.Equal(charged, await MemberSpentAsync(org, member));
        await app.AssertLedgerMatchesBalanceAsync(org, Grant - charged);
        Assert.Empty(app.Violations);
    }
}
