using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>Exact charges: the provider's tokens × our price, once, in the ledger and the balance.</summary>
public sealed class ChargingTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    private static object Chat(bool stream = false, int? maxTokens = 50) => new Dictionary<string, object?>
    {
        ["model"] = CreditsApp.Model, ["messages"] = new[] { new { role = "user", content = "hi" } }, ["stream"] = stream, ["max_tokens"] = maxTokens,
    };

    [Fact]
    public async Task A_call_is_charged_its_exact_cost_and_the_ledger_equals_the_balance()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000);

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        await app.WaitForUsageAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("0.000018", response.Headers.GetValues("X-AiGate-Cost-Usd").Single());   // 11 + 7 tokens at 1 µ$ each
        var (balance, held, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(1_000 - 18, balance);
        Assert.Equal(balance, ledger);
        var row = await app.Database.ScalarAsync<string>($"select row_to_json(u)::text from usage_events u where user_id = '{userId}'");
        var usage = JsonNode.Parse(row!)!;
        Assert.Equal(11, usage["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(7, usage["completion_tokens"]!.GetValue<long>());
        Assert.Equal(18, usage["cost_micros"]!.GetValue<long>());
        Assert.False(usage["estimated"]!.GetValue<bool>());
        Assert.Equal("fake", usage["provider"]!.GetValue<string>());
        Assert.Equal(200, usage["status"]!.GetValue<int>());
        Assert.Equal(response.Headers.GetValues("X-Request-Id").Single(), usage["request_id"]!.GetValue<string>());
        Assert.True(held >= 0);
    }

    [Fact]
    public async Task Cached_input_tokens_are_charged_at_the_cached_rate()
    {
        app.Upstream.Reset();
        app.Upstream.CachedTokens = 5;
        await app.Database.ExecuteAsync($"update models set cached_input_micros_per_mtok = 100000 where id = '{CreditsApp.Model}'");
        await app.Services.GetRequiredService<AiGate.Web.Features.Models.ModelCatalog>().ReloadAsync(CancellationToken.None);
        try
        {
            var (client, _, _) = await app.CreateApiClientAsync();
            var body = await (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).Content.ReadFromJsonAsync<JsonObject>();
            // 6 uncached × 1 µ$ + 5 cached × 0.1 µ$ + 7 output × 1 µ$ = 13.5 µ$, rounded up once: 14 µ$.
            Assert.Equal(0.000014m, body!["usage"]!["cost"]!.GetValue<decimal>());
        }
        finally
        {
            app.Upstream.CachedTokens = 0;
            await app.Database.ExecuteAsync($"update models set cached_input_micros_per_mtok = 1000000 where id = '{CreditsApp.Model}'");
            await app.Services.GetRequiredService<AiGate.Web.Features.Models.ModelCatalog>().ReloadAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_stream_is_charged_from_the_providers_usage_even_when_the_client_did_not_ask_for_it()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000);

        var text = await (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(stream: true))).Content.ReadAsStringAsync();
        await app.WaitForUsageAsync();

        Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
        Assert.Equal(1_000 - 18, (await app.MoneyAsync(userId)).Balance);
        Assert.False(await app.Database.ScalarAsync<bool>($"select estimated from usage_events where user_id = '{userId}'"));
    }

    [Fact]
    public async Task A_stream_without_provider_usage_is_charged_from_the_text_it_produced_and_flagged_estimated()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.NoUsage;
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000);

        await (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(stream: true))).Content.ReadAsStringAsync();
        await app.WaitForUsageAsync();

        Assert.True(await app.Database.ScalarAsync<bool>($"select estimated from usage_events where user_id = '{userId}'"));
        var completion = await app.Database.ScalarAsync<long>($"select completion_tokens from usage_events where user_id = '{userId}'");
        Assert.InRange(completion, 5, 10);   // "Hello from the fake upstream": 28 bytes → about 7 tokens
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.True(balance < 1_000);
        Assert.Equal(balance, ledger);
    }

    /// <summary>
    /// RELIABILITY F5: a client that leaves mid-stream does not stop the bill at what it read; the gateway drains the
    /// upstream to its end (here 8 s of a slow stream, within the 30 s drain) and bills what the provider reports.
    /// </summary>
    [Fact]
    public async Task A_client_that_leaves_mid_stream_pays_what_the_provider_reports_for_the_whole_generation()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.SlowStream;
        app.Upstream.Reply = string.Join(' ', Enumerable.Repeat("word", 40));
        app.Upstream.CompletionTokens = 40;
        try
        {
            var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000);
            using (var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/completions") { Content = JsonContent.Create(Chat(stream: true)) })
            using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
            {
                await using var stream = await response.Content.ReadAsStreamAsync();
                var buffer = new byte[4096];
                var seen = 0;
                while (seen < 3 && await stream.ReadAsync(buffer) > 0) seen++;   // a few chunks, then leave
            }
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == 0 && DateTime.UtcNow < deadline)
                await Task.Delay(50);

            var completion = await app.Database.ScalarAsync<long>($"select completion_tokens from usage_events where user_id = '{userId}'");
            Assert.False(await app.Database.ScalarAsync<bool>($"select estimated from usage_events where user_id = '{userId}'"));
            Assert.Equal(40, completion);   // the provider's report of the whole answer, not the few words the client read
            Assert.Equal(0, app.Upstream.Aborted);
            var prompt = await app.Database.ScalarAsync<long>($"select prompt_tokens from usage_events where user_id = '{userId}'");
            await app.WaitForUsageAsync();
            var (balance, _, ledger) = await app.MoneyAsync(userId);
            Assert.Equal(balance, ledger);
            Assert.Equal(1_000 - prompt - completion, balance);
        }
        finally
        {
            app.Upstream.Reply = "Hello from the fake upstream";
            app.Upstream.CompletionTokens = 7;
        }
    }

    [Fact]
    public async Task A_failed_upstream_call_costs_nothing_and_releases_the_reservation()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.Fail500;
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000);

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        await app.WaitForUsageAsync();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(1_000, (await app.MoneyAsync(userId)).Balance);
        Assert.Equal(0, await app.UsageCostAsync(userId));
        Assert.Equal(502, await app.Database.ScalarAsync<int>($"select status from usage_events where user_id = '{userId}'"));
        // The slice leased for the call goes back to the balance once idle.
        await app.Services.GetRequiredService<CreditLeases>().ReturnIdleAsync(all: true, CancellationToken.None);
        Assert.Equal(0, (await app.MoneyAsync(userId)).Held);
    }

    [Fact]
    public async Task Without_enough_credit_the_call_gets_402_and_never_reaches_the_provider()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 10);   // worst case of the call is ~60 µ$

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;

        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.Equal("insufficient_credits", error["code"]!.GetValue<string>());
        Assert.Contains("your balance is $0.00001", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(0, app.Upstream.ChatRequests);
        Assert.Equal(10, (await app.MoneyAsync(userId)).Balance);
    }

    [Fact]
    public async Task A_user_with_no_credit_at_all_gets_402()
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: 0);
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
    }

    [Fact]
    public async Task Without_max_tokens_the_gateway_sends_its_own_limit_upstream_so_the_reservation_bounds_the_cost()
    {
        app.Upstream.Reset();
        var (client, _, _) = await app.CreateApiClientAsync();

        await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(maxTokens: null));

        var sent = JsonNode.Parse(app.Upstream.Requests.Single().Body)!;
        Assert.Equal(1024, sent["max_tokens"]!.GetValue<int>());   // min(model maximum 1024, default 4096)
    }

    [Fact]
    public async Task A_key_credit_limit_stops_the_key_not_the_account()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync(new AiGate.Web.Features.Keys.KeyLimits(CreditLimitMicros: 100), creditMicros: 10_000);

        var first = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(maxTokens: 10));
        var second = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(maxTokens: 80));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.PaymentRequired, second.StatusCode);
        Assert.Contains("credit limit", (await second.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        var other = await app.IssueKeyAsync(userId);
        var viaOther = app.CreateClient();
        viaOther.DefaultRequestHeaders.Authorization = new("Bearer", other);
        Assert.Equal(HttpStatusCode.OK, (await viaOther.PostAsJsonAsync("/api/v1/chat/completions", Chat(maxTokens: 80))).StatusCode);
    }

    [Fact]
    public async Task Grant_credits_verb_posts_a_ledger_entry()
    {
        var email = $"grant-{Guid.NewGuid():N}@example.test";
        var userId = await app.CreateUserAsync(email);
        var stdout = new StringWriter();

        var code = await AiGate.Web.Infrastructure.Cli.CommandLine.RunAsync(app.Services,
            ["grant-credits", "--email", email, "--usd", "2.5", "--reason", "welcome"], stdout, TextWriter.Null, CancellationToken.None);

        Assert.Equal(0, code);
        Assert.Contains("balance $2.5", stdout.ToString(), StringComparison.Ordinal);
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(2_500_000, balance);
        Assert.Equal(balance, ledger);
        Assert.Equal("welcome", await app.Database.ScalarAsync<string>($"select reference from ledger_entries where user_id = '{userId}' and kind = 'grant'"));
        Assert.Equal(2, await AiGate.Web.Infrastructure.Cli.CommandLine.RunAsync(app.Services,
            ["grant-credits", "--email", email, "--usd", "ten", "--reason", "x"], TextWriter.Null, TextWriter.Null, CancellationToken.None));
        Assert.Equal(1, await AiGate.Web.Infrastructure.Cli.CommandLine.RunAsync(app.Services,
            ["grant-credits", "--email", "nobody@example.test", "--usd", "1", "--reason", "x"], TextWriter.Null, TextWriter.Null, CancellationToken.None));
    }
}
