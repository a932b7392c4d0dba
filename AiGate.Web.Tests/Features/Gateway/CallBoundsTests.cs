using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Credits;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// <see cref="CreditsApp"/> (1 µ$ a token, so costs are token counts) with short upstream deadlines: 1 s to a
/// stream's first byte, 3 s for a whole non-streamed call, and an Anthropic-kind route for a second model.
/// </summary>
public sealed class BoundedCallsApp : CreditsApp
{
    public const string ClaudeModel = "test/claude-like";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(ClaudeModel, "Claude-like", "claude", "claude-x");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Providers:fake:TimeoutSeconds"] = "1",
        ["Providers:fake:NonStreamTimeoutSeconds"] = "3",
        // Never called: the calls these tests send it are refused before routing.
        ["Providers:claude:Kind"] = "anthropic", ["Providers:claude:BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers:claude:ApiKey"] = "sk-ant-fake",
    };
}

/// <summary>Issue 11 #3: the reservation bounds the call, whatever the body says of n, images and output limits.</summary>
public sealed class ReservationBoundsTests(BoundedCallsApp app) : IClassFixture<BoundedCallsApp>
{
    private static JsonObject Chat(JsonNode content, string model = CreditsApp.Model) => new()
    {
        ["model"] = model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
    };

    private static async Task<JsonNode> ErrorAsync(HttpResponseMessage response) => (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;

    [Fact]
    public async Task N_choices_multiply_the_reserved_output_and_are_forwarded()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 1_000);

        var one = Chat("hi");
        one["max_tokens"] = 400;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", one)).StatusCode);
        Assert.Contains("\"n\":3", await SendAndForwardedAsync(client, 3, 300), StringComparison.Ordinal);

        // 3 × 400 output tokens cannot be covered by what is left of 1,000 µ$: refused before anything goes upstream.
        app.Upstream.Reset();
        var three = Chat("hi");
        three["max_tokens"] = 400;
        three["n"] = 3;
        var refused = await client.PostAsJsonAsync("/api/v1/chat/completions", three);
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);
        Assert.Equal("insufficient_credits", (await ErrorAsync(refused))["code"]!.GetValue<string>());
        Assert.Equal(0, app.Upstream.ChatRequests);
        await app.WaitForUsageAsync();
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(balance, ledger);
    }

    private async Task<string> SendAndForwardedAsync(HttpClient client, int n, int maxTokens)
    {
        app.Upstream.Reset();
        var body = Chat("hi");
        body["max_tokens"] = maxTokens / n;
        body["n"] = n;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", body)).StatusCode);
        var sent = app.Upstream.Requests.Single();
        Assert.Equal("application/json", sent.Headers["Content-Type"]);   // the forwarded bytes keep their type
        return sent.Body;
    }

    [Fact]
    public async Task An_image_part_is_reserved_at_its_fixed_worst_case_not_by_the_bytes_of_its_url()
    {
        app.Upstream.Reset();
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: 3_000);

        var text = Chat("describe the picture");
        text["max_tokens"] = 50;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", text)).StatusCode);

        var image = Chat(new JsonArray(
            new JsonObject { ["type"] = "text", ["text"] = "describe the picture" },
            new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = "https://example.com/a.png", ["detail"] = "high" } }));
        image["max_tokens"] = 50;
        var refused = await client.PostAsJsonAsync("/api/v1/chat/completions", image);
        Assert.True(refused.StatusCode == HttpStatusCode.PaymentRequired, await refused.Content.ReadAsStringAsync());   // 4,500 tokens reserved for the image > 3,000 µ$
        Assert.Single(app.Upstream.Requests);
    }

    [Fact]
    public async Task With_both_output_limits_each_is_checked_and_the_larger_is_reserved()
    {
        app.Upstream.Reset();
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: 500);

        var both = Chat("hi");
        both["max_completion_tokens"] = 10;
        both["max_tokens"] = 900;
        var refused = await client.PostAsJsonAsync("/api/v1/chat/completions", both);
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);   // 900, not 10, bounds the output

        both["max_tokens"] = 5_000;   // above the model's 1,024
        var invalid = await client.PostAsJsonAsync("/api/v1/chat/completions", both);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal("max_tokens", (await ErrorAsync(invalid))["param"]!.GetValue<string>());
        Assert.Equal(0, app.Upstream.ChatRequests);
    }

    [Fact]
    public async Task Several_choices_from_a_model_whose_routes_answer_one_are_refused_naming_n()
    {
        app.Upstream.Reset();
        var (client, _, _) = await app.CreateApiClientAsync();
        var body = Chat("hi", BoundedCallsApp.ClaudeModel);
        body["n"] = 2;

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await ErrorAsync(response);
        Assert.Equal("n", error["param"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Empty(app.Upstream.Requests);
    }

    [Fact]
    public async Task A_call_that_costs_more_than_its_reservation_is_billed_in_full_as_recorded_debt()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 100);
        app.Upstream.CompletionTokens = 150;   // the provider writes far past max_tokens = 20 (within our 10× plausibility bound)
        try
        {
            var body = Chat("hi");
            body["max_tokens"] = 20;
            var response = await client.PostAsJsonAsync("/api/v1/chat/completions", body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await app.WaitForUsageAsync();

            var (balance, _, ledger) = await app.MoneyAsync(userId);
            Assert.Equal(100 - 11 - 150, balance);   // billed in full: the debt is recorded, not forgiven
            Assert.Equal(balance, ledger);
            var next = await client.PostAsJsonAsync("/api/v1/chat/completions", body);
            Assert.Equal(HttpStatusCode.PaymentRequired, next.StatusCode);
        }
        finally
        {
            app.Upstream.CompletionTokens = 7;
        }
    }
}

/// <summary>Issue 11 #4: a non-streamed call has its own deadline, is never retried once the upstream may be generating, and a client that leaves pays its prompt.</summary>
public sealed class NonStreamedCallTests(BoundedCallsApp app) : IClassFixture<BoundedCallsApp>
{
    private static object Chat() => new { model = CreditsApp.Model, messages = new[] { new { role = "user", content = "write a long essay" } }, max_tokens = 100 };

    [Fact]
    public async Task A_generation_longer_than_the_time_to_first_byte_limit_is_answered_from_one_upstream_call()
    {
        app.Upstream.Reset();
        app.Upstream.JsonDelay = TimeSpan.FromSeconds(2);   // past the 1 s time to first byte, within the 3 s deadline
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 10_000);

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, app.Upstream.ChatRequests);
        await app.WaitForUsageAsync();
        Assert.Equal(10_000 - 18, (await app.MoneyAsync(userId)).Balance);
    }

    [Fact]
    public async Task A_call_past_its_deadline_after_the_upstream_took_it_is_not_retried_and_not_billed()
    {
        app.Upstream.Reset();
        app.Upstream.JsonDelay = TimeSpan.FromSeconds(8);
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 10_000);

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream_timeout", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        Assert.Equal(1, app.Upstream.ChatRequests);   // was 3: each retry paid for another generation
        await app.WaitForUsageAsync();
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(10_000, balance);
        Assert.Equal(balance, ledger);
    }

    [Fact]
    public async Task Failures_before_the_request_reached_the_upstream_are_still_retried()
    {
        app.Upstream.Reset();
        app.Upstream.Mode = FakeOpenAi.Behaviour.Fail500;
        var (client, _, _) = await app.CreateApiClientAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(3, app.Upstream.ChatRequests);   // a 5xx answer: nothing was generated, so retrying is safe
    }

    [Fact]
    public async Task A_client_that_leaves_while_the_upstream_generates_pays_for_its_prompt()
    {
        app.Upstream.Reset();
        app.Upstream.JsonDelay = TimeSpan.FromSeconds(2);
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: 10_000);

        using var leave = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.PostAsJsonAsync("/api/v1/chat/completions", Chat(), leave.Token));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        await app.WaitForUsageAsync();
        var row = JsonNode.Parse((await app.Database.ScalarAsync<string>($"select row_to_json(u)::text from usage_events u where user_id = '{userId}'"))!)!;
        Assert.True(row["prompt_tokens"]!.GetValue<long>() > 0);
        Assert.Equal(0, row["completion_tokens"]!.GetValue<long>());
        Assert.True(row["estimated"]!.GetValue<bool>());
        Assert.True(row["cost_micros"]!.GetValue<long>() > 0);   // was 0: the call cost us a generation and the user nothing
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(10_000 - row["cost_micros"]!.GetValue<long>(), balance);
        Assert.Equal(balance, ledger);
        Assert.Equal(1, app.Upstream.ChatRequests);
    }
}
