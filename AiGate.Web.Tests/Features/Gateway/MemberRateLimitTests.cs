using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Keys;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// A member's own requests and tokens per minute in an organization (issue 17): shared by all of the member's keys,
/// refused with a 429 in OpenAI's envelope that names the member's limit (member_rate_limit_exceeded), with Retry-After
/// and the x-ratelimit headers; the owner and the other members are not held by it. The plan keeps the account's limits
/// (high here, as in every fixture but the rate-limit one).
/// </summary>
public sealed class MemberRateLimitTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    private static object Chat(string content = "hi", int maxTokens = 5) => new
    {
        model = "echo/echo-1", messages = new[] { new { role = "user", content } }, max_tokens = maxTokens,
    };

    private async Task<(Guid Org, Guid Owner, Guid Other)> TeamAsync(Guid member, int? rpm = null, long? tpm = null)
    {
        var owner = await app.CreateUserAsync();
        var org = await app.CreateTeamAsync(owner);
        await app.AddMemberAsync(org, member, requestsPerMinute: rpm, tokensPerMinute: tpm);
        var other = await app.CreateUserAsync();
        await app.AddMemberAsync(org, other);
        await app.GrantAsync(org, 10_000_000);
        return (org, owner, other);
    }

    [Fact]
    public async Task A_members_requests_per_minute_cover_all_their_keys_and_no_one_else()
    {
        var member = await app.CreateUserAsync();
        var (org, owner, other) = await TeamAsync(member, rpm: 3);
        var (first, _) = await app.MemberClientAsync(org, member);
        var (second, _) = await app.MemberClientAsync(org, member);

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 4; i++) answers.Add(await (i % 2 == 0 ? first : second).PostAsJsonAsync("/api/v1/chat/completions", Chat()));

        Assert.All(answers.Take(3), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal("3", answers[0].Headers.GetValues("x-ratelimit-limit-requests").Single());
        Assert.Equal("2", answers[0].Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.Equal("0", answers[2].Headers.GetValues("x-ratelimit-remaining-requests").Single());
        var limited = answers[3];
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        var error = (await limited.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("member_rate_limit_exceeded", error["code"]!.GetValue<string>());
        Assert.Equal("requests", error["type"]!.GetValue<string>());
        Assert.Contains("your organization limits you to 3 requests per minute", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var retryAfter = int.Parse(limited.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 20);   // one request refills in 60 s / 3
        Assert.Equal("0", limited.Headers.GetValues("x-ratelimit-remaining-requests").Single());

        // The organization's owner and another member have no cap of their own: they go on.
        var (ownerClient, _) = await app.MemberClientAsync(org, owner);
        var (otherClient, _) = await app.MemberClientAsync(org, other);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await ownerClient.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await otherClient.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);
        }
    }

    [Fact]
    public async Task A_members_tokens_per_minute_count_the_prompt_and_refuse_with_the_member_code()
    {
        var member = await app.CreateUserAsync();
        var (org, owner, _) = await TeamAsync(member, tpm: 300);
        var (client, _) = await app.MemberClientAsync(org, member);
        var prompt = string.Join(' ', Enumerable.Repeat("word", 200));   // ~200 tokens, used (not given back) by each call

        var fits = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(prompt));
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
        Assert.Equal("300", fits.Headers.GetValues("x-ratelimit-limit-tokens").Single());

        var limited = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(prompt));
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        var error = (await limited.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("member_rate_limit_exceeded", error["code"]!.GetValue<string>());
        Assert.Equal("tokens", error["type"]!.GetValue<string>());
        Assert.True(limited.Headers.Contains("Retry-After"));
        Assert.True(limited.Headers.Contains("x-ratelimit-reset-tokens"));

        var (ownerClient, _) = await app.MemberClientAsync(org, owner);
        Assert.Equal(HttpStatusCode.OK, (await ownerClient.PostAsJsonAsync("/api/v1/chat/completions", Chat(prompt))).StatusCode);
    }

    [Fact]
    public void Checking_a_key_with_member_caps_allocates_nothing()
    {
        var limits = app.Services.GetRequiredService<RateLimits>();
        var key = new KeyIdentity(Guid.NewGuid(), Guid.NewGuid(), "ag-test", null, null, 0, 1_000_000, 1_000_000,
            System.Collections.Frozen.FrozenSet<string>.Empty, CreatedBy: Guid.NewGuid(), MemberRequestsPerMinute: 1_000_000, MemberTokensPerMinute: 1_000_000_000);
        for (var i = 0; i < 10; i++) Assert.True(limits.Check(key, 1, 10).Allowed);   // the buckets exist from here on

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            limits.Check(key, 1, 0);
            limits.Check(key, 0, 10);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
