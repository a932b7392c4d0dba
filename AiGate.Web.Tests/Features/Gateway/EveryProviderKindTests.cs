using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.Tokenizers;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary><see cref="StreamBillingApp"/> plus a Claude and a Gemini model priced like its GPT one: 1 µ$ a token, so costs are token counts.</summary>
public class EveryKindApp : StreamBillingApp
{
    public const string MeteredClaude = "test/claude-metered";
    public const string MeteredGemini = "test/gemini-metered";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(MeteredClaude, "Claude metered", "anthropic", "claude-sonnet-4-5", ownedBy: "anthropic");
        await Database.InsertMeteredModelAsync(MeteredGemini, "Gemini metered", "gemini", "gemini-2.5-flash", ownedBy: "google");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    /// <summary>The user's one usage row, once written.</summary>
    public async Task<JsonNode> UsageRowAsync(Guid userId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (await Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        await WaitForUsageAsync();
        return JsonNode.Parse((await Database.ScalarAsync<string>($"select row_to_json(u)::text from usage_events u where user_id = '{userId}'"))!)!;
    }

    /// <summary>Once every usage record is written: the balance is as expected and equals the ledger's sum.</summary>
    public async Task AssertLedgerMatchesBalanceAsync(Guid userId, long expectedBalance)
    {
        await WaitForUsageAsync();
        var balance = await Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{userId}'");
        var ledger = await Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'");
        Assert.Equal(expectedBalance, balance);
        Assert.Equal(balance, ledger);
    }
}

/// <summary>
/// The money paths of a non-streamed call and of the reservation, for every provider kind (the streamed ones are in
/// <see cref="StreamBillingTests"/> and ProviderStopTests): the client that walks away while the provider generates,
/// the provider that reports absurd usage, and the body that lies about its size (images, both output limits, n).
/// The OpenAI, Anthropic and Gemini fakes speak their own wire formats and refuse what their APIs refuse.
/// </summary>
public sealed class EveryProviderKindTests(EveryKindApp app) : IClassFixture<EveryKindApp>
{
    private static readonly Tokenizer O200k = TiktokenTokenizer.CreateForEncoding("o200k_base");
    private static readonly Tokenizer Cl100k = TiktokenTokenizer.CreateForEncoding("cl100k_base");
    private const string TinyPng = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    public static TheoryData<string> Kinds => new() { "openai", "anthropic", "gemini" };

    private static string ModelOf(string kind) => kind switch
    {
        "openai" => StreamBillingApp.Gpt,
        "anthropic" => EveryKindApp.MeteredClaude,
        _ => EveryKindApp.MeteredGemini,
    };

    private FakeUpstream.RecordedRequest[] UpstreamCalls(string kind) => kind switch
    {
        "openai" => app.OpenAi.Requests.Where(r => r.PathAndQuery == "/v1/chat/completions").ToArray(),
        "anthropic" => app.Anthropic.Requests.Where(r => r.PathAndQuery == "/v1/messages").ToArray(),
        _ => app.GeminiFake.Requests.Where(r => r.PathAndQuery.StartsWith("/v1beta/models/", StringComparison.Ordinal)).ToArray(),
    };

    private async Task<(HttpClient Client, Guid UserId)> StartAsync(long creditMicros)
    {
        app.OpenAi.Reset();
        app.OpenAi.Reply = "Hello from the fake upstream";
        app.Anthropic.Requests.Clear();
        app.GeminiFake.Requests.Clear();
        var (client, _, userId) = await app.CreateApiClientAsync(creditMicros: creditMicros);
        return (client, userId);
    }

    private static JsonObject Chat(string kind, JsonNode content) => new()
    {
        ["model"] = ModelOf(kind), ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
    };

    /// <summary>Posts a chat call and walks away after <paramref name="after"/>, before the answer is back.</summary>
    private static async Task LeaveAfterAsync(HttpClient client, JsonObject body, TimeSpan after)
    {
        using var leave = new CancellationTokenSource(after);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.PostAsJsonAsync("/api/v1/chat/completions", body, leave.Token));
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task A_client_that_leaves_a_non_streamed_call_while_the_provider_generates_pays_for_its_prompt(string kind)
    {
        var (client, userId) = await StartAsync(creditMicros: 10_000);
        app.OpenAi.JsonDelay = TimeSpan.FromSeconds(2);
        app.OpenAi.Reply = LongReply.Text;
        var body = Chat(kind, "LONG answer please, GENERATE SLOWLY");
        body["max_tokens"] = 800;

        await LeaveAfterAsync(client, body, TimeSpan.FromMilliseconds(700));

        var row = await app.UsageRowAsync(userId);
        Assert.True(row["prompt_tokens"]!.GetValue<long>() > 0);
        Assert.Equal(0, row["completion_tokens"]!.GetValue<long>());
        Assert.True(row["estimated"]!.GetValue<bool>());
        var cost = row["cost_micros"]!.GetValue<long>();
        Assert.True(cost > 0, "the provider was asked to generate: the prompt is owed");
        await app.AssertLedgerMatchesBalanceAsync(userId, 10_000 - cost);
        Assert.Single(UpstreamCalls(kind));
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task A_client_that_leaves_after_a_non_streamed_answer_began_pays_for_the_whole_answer(string kind)
    {
        // The provider's headers arrive at once and its body 1.5 s later; the client leaves in between. The answer was
        // generated, so it is read to its end and billed from it, not as the prompt alone.
        var (client, userId) = await StartAsync(creditMicros: 100_000);
        app.OpenAi.Reply = LongReply.Text;
        var body = Chat(kind, "LONG answer please, BODY AFTER HEADERS");
        body["max_tokens"] = 1000;

        await LeaveAfterAsync(client, body, TimeSpan.FromMilliseconds(700));

        var row = await app.UsageRowAsync(userId);
        Assert.True(row["completion_tokens"]!.GetValue<long>() > 100, $"billed {row["completion_tokens"]} output tokens for a whole long answer");
        await app.AssertLedgerMatchesBalanceAsync(userId, 100_000 - row["cost_micros"]!.GetValue<long>());
        Assert.Single(UpstreamCalls(kind));
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task An_absurdly_low_usage_report_on_a_non_streamed_answer_is_replaced_by_our_count(string kind)
    {
        var (client, userId) = await StartAsync(creditMicros: 100_000);
        app.OpenAi.Mode = FakeOpenAi.Behaviour.LowUsage;
        app.OpenAi.Reply = LongReply.Text;
        var body = Chat(kind, "LONG answer please, LOWUSAGE");
        body["max_tokens"] = 1000;

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(LongReply.Text, answer["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        var expected = (kind == "openai" ? O200k : Cl100k).CountTokens(LongReply.Text);
        var row = await app.UsageRowAsync(userId);
        var billed = row["completion_tokens"]!.GetValue<long>();
        Assert.True(billed >= expected * 0.9 && billed <= expected * 1.1, $"billed {billed} output tokens for an answer of {expected} (±10 %); the provider said 1");
        Assert.True(row["estimated"]!.GetValue<bool>());
        Assert.Equal(billed, answer["usage"]!["completion_tokens"]!.GetValue<long>());   // the client sees what it pays for
        await app.AssertLedgerMatchesBalanceAsync(userId, 100_000 - row["cost_micros"]!.GetValue<long>());
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task An_image_part_is_reserved_at_its_worst_case_and_reaches_the_provider_in_its_own_format(string kind)
    {
        var (client, _) = await StartAsync(creditMicros: 3_000);
        var text = Chat(kind, "describe the picture");
        text["max_tokens"] = 50;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", text)).StatusCode);

        var image = Chat(kind, new JsonArray(
            new JsonObject { ["type"] = "text", ["text"] = "describe the picture" },
            new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = TinyPng } }));
        image["max_tokens"] = 50;
        var refused = await client.PostAsJsonAsync("/api/v1/chat/completions", image);
        Assert.True(refused.StatusCode == HttpStatusCode.PaymentRequired, await refused.Content.ReadAsStringAsync());   // 4,500 tokens for the image > what is left of 3,000 µ$
        Assert.Single(UpstreamCalls(kind));

        var (rich, _) = await StartAsync(creditMicros: 10_000);
        var served = await rich.PostAsJsonAsync("/api/v1/chat/completions", image);
        Assert.True(served.StatusCode == HttpStatusCode.OK, await served.Content.ReadAsStringAsync());
        var forwarded = JsonNode.Parse(UpstreamCalls(kind).Single().Body)!.ToJsonString();
        Assert.Contains(kind switch { "openai" => "\"image_url\"", "anthropic" => "\"type\":\"image\"", _ => "\"inlineData\"" }, forwarded, StringComparison.Ordinal);
        Assert.Empty(app.Violations);
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task With_both_output_limits_the_larger_is_reserved_and_bounds_what_the_provider_is_asked_for(string kind)
    {
        var (poor, _) = await StartAsync(creditMicros: 500);
        var both = Chat(kind, "hi");
        both["max_completion_tokens"] = 10;
        both["max_tokens"] = 900;
        var refused = await poor.PostAsJsonAsync("/api/v1/chat/completions", both);
        Assert.Equal(HttpStatusCode.PaymentRequired, refused.StatusCode);   // 900, not 10, bounds the output
        Assert.Empty(UpstreamCalls(kind));

        var (client, _) = await StartAsync(creditMicros: 10_000);
        both["max_tokens"] = 300;
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", both);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var sent = JsonNode.Parse(UpstreamCalls(kind).Single().Body)!;
        var limits = kind switch
        {
            "openai" => new[] { sent["max_completion_tokens"], sent["max_tokens"] },
            "anthropic" => [sent["max_tokens"]],
            _ => [sent["generationConfig"]?["maxOutputTokens"]],
        };
        Assert.Contains(limits, l => l is not null);
        Assert.All(limits.Where(l => l is not null), l => Assert.InRange(l!.GetValue<long>(), 10, 300));   // never more than was reserved
        Assert.Empty(app.Violations);
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task Several_choices_are_reserved_once_each_or_refused_where_the_provider_answers_one(string kind)
    {
        var (client, _) = await StartAsync(creditMicros: 1_000);
        var body = Chat(kind, "hi");
        body["max_tokens"] = 400;
        body["n"] = 3;

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", body);

        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        if (kind == "anthropic")
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);   // Claude answers one choice: say so, naming n
            Assert.Equal("n", error["param"]!.GetValue<string>());
        }
        else
        {
            Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);   // 3 × 400 > 1,000 µ$; one choice alone would fit
            Assert.Equal("insufficient_credits", error["code"]!.GetValue<string>());
        }
        Assert.Empty(UpstreamCalls(kind));

        if (kind == "anthropic") return;
        var (rich, _) = await StartAsync(creditMicros: 10_000);
        Assert.Equal(HttpStatusCode.OK, (await rich.PostAsJsonAsync("/api/v1/chat/completions", body)).StatusCode);
        var sent = JsonNode.Parse(UpstreamCalls(kind).Single().Body)!;
        Assert.Equal(3, (kind == "openai" ? sent["n"] : sent["generationConfig"]?["candidateCount"])!.GetValue<int>());
    }
}
