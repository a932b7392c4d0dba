using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Keys;
using AiGate.Web.Infrastructure;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>An app whose accounts (on the free plan, plan 0) may make 6 requests a minute.</summary>
public sealed class RateLimitedApp : AiGateApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Billing:Plans:0:RequestsPerMinute"] = "6",
        ["Billing:Plans:0:TokensPerMinute"] = "100000",
    };
}

public sealed class RateLimitTests(RateLimitedApp app) : IClassFixture<RateLimitedApp>
{
    private static object Chat(int maxTokens = 5) => new
    {
        model = "echo/echo-1", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = maxTokens,
    };

    [Fact]
    public async Task A_keys_requests_per_minute_are_enforced_with_OpenAI_headers_and_a_429()
    {
        var (client, _, _) = await app.CreateApiClientAsync(new KeyLimits(RequestsPerMinute: 3));

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 4; i++) answers.Add(await client.PostAsJsonAsync("/api/v1/chat/completions", Chat()));

        Assert.All(answers.Take(3), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal("3", answers[0].Headers.GetValues("x-ratelimit-limit-requests").Single());
        Assert.Equal("2", answers[0].Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.Equal("0", answers[2].Headers.GetValues("x-ratelimit-remaining-requests").Single());
        Assert.True(answers[0].Headers.Contains("x-ratelimit-reset-tokens"));

        var limited = answers[3];
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        var error = (await limited.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("rate_limit_exceeded", error["code"]!.GetValue<string>());
        Assert.Equal("requests", error["type"]!.GetValue<string>());
        var retryAfter = int.Parse(limited.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 1, 20);   // one request refills in 60 s / 3
    }

    [Fact]
    public async Task A_keys_tokens_per_minute_count_the_prompt_and_the_output_limit()
    {
        var (client, _, _) = await app.CreateApiClientAsync(new KeyLimits(TokensPerMinute: 1000));

        var tooBig = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(maxTokens: 990));
        var fits = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(maxTokens: 100));

        // The first asks for more than a full minute's budget minus nothing used: admitted only because the bucket is full.
        Assert.Equal(HttpStatusCode.OK, tooBig.StatusCode);
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);   // the unused part of the first call's estimate came back
        Assert.Equal("1000", fits.Headers.GetValues("x-ratelimit-limit-tokens").Single());
    }

    [Fact]
    public async Task The_account_limit_covers_all_its_keys_and_no_other_account()
    {
        var (first, _, userId) = await app.CreateApiClientAsync();
        var second = app.CreateClient();
        second.DefaultRequestHeaders.Authorization = new("Bearer", await app.IssueKeyAsync(userId));
        var (stranger, _, _) = await app.CreateApiClientAsync();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 7; i++) statuses.Add((await (i % 2 == 0 ? first : second).PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);

        Assert.Equal(6, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);
        Assert.Equal(HttpStatusCode.OK, (await stranger.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);
    }

    [Fact]
    public async Task With_two_live_instances_each_enforces_half_the_limit()
    {
        var registry = app.Services.GetRequiredService<InstanceRegistry>();
        await app.Database.ExecuteAsync("insert into app_instances (id, started_at, last_seen_at) values ('other-instance', now(), now())");
        try
        {
            await registry.ReportAsync(CancellationToken.None);
            Assert.Equal(2, registry.LiveInstances);
            var (client, _, _) = await app.CreateApiClientAsync(new KeyLimits(RequestsPerMinute: 4));

            var answers = new List<HttpStatusCode>();
            for (var i = 0; i < 3; i++) answers.Add((await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);

            Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], answers);
        }
        finally
        {
            await app.Database.ExecuteAsync("delete from app_instances where id = 'other-instance'");
            await registry.ReportAsync(CancellationToken.None);
        }
    }

    [Theory]
    [InlineData(0.12, "120ms")]
    [InlineData(1.2, "2s")]
    [InlineData(59, "59s")]
    [InlineData(360, "6m0s")]
    public void Reset_durations_are_written_as_OpenAI_does(double seconds, string expected) =>
        Assert.Equal(expected, RateLimits.Duration(TimeSpan.FromSeconds(seconds)));
}
