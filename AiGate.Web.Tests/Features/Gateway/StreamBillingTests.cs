using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.Tokenizers;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>The app with one provider of each kind (OpenAI, Anthropic, Gemini fakes) and a short stream idle timeout.</summary>
public class StreamBillingApp : AiGateApp
{
    public const string Gpt = "test/gpt-4o-mini";
    public const string Claude = "anthropic/claude-sonnet-4-5";
    public const string Gemini = "google/gemini-2.5-flash";

    public System.Collections.Concurrent.ConcurrentQueue<string> Violations { get; } = new();
    public FakeOpenAi OpenAi { get; private set; } = null!;
    public FakeUpstream Anthropic { get; private set; } = null!;
    public FakeUpstream GeminiFake { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        OpenAi = await FakeOpenAi.StartAsync();
        Anthropic = await FakeAnthropic.StartAsync(Violations);
        GeminiFake = await FakeGemini.StartAsync(Violations);
        await base.InitializeAsync();
        // An OpenAI model (counted with o200k_base, its own tokenizer) at 1 µ$ a token, so costs are token counts.
        await Database.InsertMeteredModelAsync(Gpt, "GPT test", "fake", "gpt-4o-mini", ownedBy: "openai", contextLength: 128000, maxOutputTokens: 4096);
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:fake:Kind"] = "openai", ["Providers:fake:BaseUrl"] = OpenAi.BaseUrl.ToString(), ["Providers:fake:ApiKey"] = "sk-fake",
        ["Providers:fake:StreamIdleSeconds"] = "2",
        ["Providers:anthropic:Kind"] = "anthropic", ["Providers:anthropic:BaseUrl"] = Anthropic.BaseUrl.ToString(),
        ["Providers:anthropic:ApiKey"] = FakeAnthropic.ProviderKey, ["Providers:anthropic:StreamIdleSeconds"] = "2",
        ["Providers:gemini:Kind"] = "gemini", ["Providers:gemini:BaseUrl"] = GeminiFake.BaseUrl.ToString(),
        ["Providers:gemini:ApiKey"] = FakeGemini.ProviderKey, ["Providers:gemini:StreamIdleSeconds"] = "2",
    };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await OpenAi.DisposeAsync();
        await Anthropic.DisposeAsync();
        await GeminiFake.DisposeAsync();
    }
}

/// <summary>
/// What a stream costs however it ends (issue 11 item 2, RELIABILITY F3/F5): for every provider kind,
/// a stream broken half-way (client gone, upstream reset, malformed event, idle timeout) is billed at
/// least the tokens of the text it forwarded, within 10 %, plus the thinking the provider produced;
/// and an absurdly low usage report is replaced by our count. Everything goes through the real app
/// over HTTP; the fakes speak each provider's wire format.
/// </summary>
public sealed class StreamBillingTests(StreamBillingApp app) : IClassFixture<StreamBillingApp>
{
    private static readonly Tokenizer O200k = TiktokenTokenizer.CreateForEncoding("o200k_base");
    private static readonly Tokenizer Cl100k = TiktokenTokenizer.CreateForEncoding("cl100k_base");
    private static readonly string[] OpenAiWords = LongReply.Text.Split(' ');

    public static TheoryData<string> Kinds => new() { "openai", "anthropic", "gemini" };

    private static string ModelOf(string kind) => kind switch
    {
        "openai" => StreamBillingApp.Gpt,
        "anthropic" => StreamBillingApp.Claude,
        _ => StreamBillingApp.Gemini,
    };

    /// <summary>The text the fakes send before they break: half the reply (the OpenAI fake streams a word per event, the others three).</summary>
    private static string HalfOf(string kind) => kind == "openai" ? string.Join(' ', OpenAiWords.Take(OpenAiWords.Length / 2)) : LongReply.FirstHalf;

    /// <summary>
    /// The tokens the provider produced for <paramref name="forwarded"/>: the OpenAI model's own
    /// tokenizer; for Claude and Gemini, cl100k (the documented approximation) plus what they think
    /// without sending it to the client (Anthropic's thinking deltas, Gemini's thoughtsTokenCount).
    /// </summary>
    internal static long Expected(string kind, string forwarded) => kind switch
    {
        "openai" => O200k.CountTokens(forwarded),
        "anthropic" => Cl100k.CountTokens(string.Concat(LongReply.Thinking.Split(". ").Select(p => p + ". ")) + forwarded),
        _ => Cl100k.CountTokens(forwarded) + FakeGemini.LongThoughts,
    };

    private async Task<(HttpClient Client, Guid UserId)> StartAsync(string kind, FakeOpenAi.Behaviour openAiMode)
    {
        app.OpenAi.Reset();
        app.OpenAi.Mode = openAiMode;
        app.OpenAi.Reply = LongReply.Text;
        var (client, _, userId) = await app.CreateApiClientAsync();
        return (client, userId);
    }

    private static HttpRequestMessage StreamRequest(string kind, string scenario) => new(HttpMethod.Post, "/api/v1/chat/completions")
    {
        Content = JsonContent.Create(new Dictionary<string, object?>
        {
            ["model"] = ModelOf(kind), ["stream"] = true, ["max_tokens"] = 2000,
            ["messages"] = new[] { new { role = "user", content = $"Write something LONG please ({scenario})" } },
        }),
    };

    /// <summary>Reads the stream's content deltas until <paramref name="stopAt"/> has arrived (then returns with the stream still open), or to the end.</summary>
    private static async Task<(string Text, bool SawError, bool SawDone)> ReadAsync(Stream stream, string? stopAt = null)
    {
        using var reader = new StreamReader(stream);
        var text = new System.Text.StringBuilder();
        var sawError = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            var data = line["data: ".Length..];
            if (data == "[DONE]") return (text.ToString(), sawError, true);
            var json = JsonNode.Parse(data)!;
            if (json["error"] is not null) sawError = true;
            if (json["choices"]?[0]?["delta"]?["content"]?.GetValue<string>() is { } content) text.Append(content);
            if (stopAt is not null && text.Length >= stopAt.Length) return (text.ToString(), sawError, false);
        }
        return (text.ToString(), sawError, false);
    }

    private async Task<(long Completion, bool Estimated, long Cost)> BilledAsync(Guid userId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        var row = JsonNode.Parse((await app.Database.ScalarAsync<string>($"select row_to_json(u)::text from usage_events u where user_id = '{userId}'"))!)!;
        return (row["completion_tokens"]!.GetValue<long>(), row["estimated"]!.GetValue<bool>(), row["cost_micros"]!.GetValue<long>());
    }

    private static void AssertWithinTenPercent(long expected, long billed) =>
        Assert.True(billed >= expected * 0.9 && billed <= expected * 1.1, $"billed {billed} output tokens; the forwarded text is {expected} (±10 %)");

    [Theory, MemberData(nameof(Kinds))]
    public async Task A_client_that_leaves_half_way_pays_for_the_text_it_was_sent(string kind)
    {
        var (client, userId) = await StartAsync(kind, FakeOpenAi.Behaviour.StallHalfway);
        var half = HalfOf(kind);

        string received;
        using (var response = await client.SendAsync(StreamRequest(kind, "STALL"), HttpCompletionOption.ResponseHeadersRead))
        {
            (received, _, _) = await ReadAsync(await response.Content.ReadAsStreamAsync(), stopAt: half);
        }   // the client leaves while the upstream is silent, well before the 2 s idle timeout

        Assert.Equal(half, received);
        var (completion, estimated, cost) = await BilledAsync(userId);
        AssertWithinTenPercent(Expected(kind, received), completion);
        Assert.True(estimated);
        Assert.True(cost > 0);
    }

    /// <summary>
    /// RELIABILITY F5: the client leaves half-way, the gateway keeps reading (sending nothing) and the stream ends
    /// within the drain's 30 s, so the call is billed by the provider's own report of the whole generation, which is
    /// what the provider charges for it. Without the drain this bills our count of the half that went out.
    /// </summary>
    [Theory, MemberData(nameof(Kinds))]
    public async Task A_client_that_leaves_is_billed_the_providers_own_report_when_the_stream_ends_within_the_drain(string kind)
    {
        var (client, userId) = await StartAsync(kind, FakeOpenAi.Behaviour.Ok);
        app.OpenAi.WordDelay = TimeSpan.FromMilliseconds(10);
        app.OpenAi.CompletionTokens = 900;
        try
        {
            using (var response = await client.SendAsync(StreamRequest(kind, "BRISK"), HttpCompletionOption.ResponseHeadersRead))
            {
                var (received, _, done) = await ReadAsync(await response.Content.ReadAsStreamAsync(), stopAt: HalfOf(kind));
                Assert.False(done);
                Assert.True(received.Length < LongReply.Text.Length);
            }   // the client leaves while the provider is still generating

            var (completion, estimated, _) = await BilledAsync(userId);
            Assert.Equal(kind switch { "openai" => 900, "anthropic" => 700, _ => 600 + FakeGemini.LongThoughts }, completion);
            Assert.False(estimated);
            if (kind == "openai") Assert.Equal(0, app.OpenAi.Aborted);   // read to its end, not cut off
        }
        finally
        {
            app.OpenAi.CompletionTokens = 7;
        }
    }

    /// <summary>Every provider kind × every way an upstream breaks a stream half way (its scenario name for the Anthropic and Gemini fakes).</summary>
    public static TheoryData<string, FakeOpenAi.Behaviour, string> Breaks
    {
        get
        {
            var data = new TheoryData<string, FakeOpenAi.Behaviour, string>();
            foreach (var kind in Kinds)
            {
                data.Add(kind, FakeOpenAi.Behaviour.DropHalfway, "DROP");             // the connection drops
                data.Add(kind, FakeOpenAi.Behaviour.MalformedHalfway, "MALFORMED");   // a malformed event
                data.Add(kind, FakeOpenAi.Behaviour.StallHalfway, "STALL");           // silence until the idle timeout
            }
            return data;
        }
    }

    [Theory, MemberData(nameof(Breaks))]
    public async Task A_stream_the_upstream_breaks_half_way_ends_with_an_error_and_is_billed_for_the_text_sent(string kind, FakeOpenAi.Behaviour fault, string scenario)
    {
        var (client, userId) = await StartAsync(kind, fault);

        using var response = await client.SendAsync(StreamRequest(kind, scenario), HttpCompletionOption.ResponseHeadersRead);
        var (received, sawError, sawDone) = await ReadAsync(await response.Content.ReadAsStreamAsync());

        Assert.Equal(HalfOf(kind), received);
        Assert.True(sawError && sawDone);
        var (completion, estimated, _) = await BilledAsync(userId);
        AssertWithinTenPercent(Expected(kind, received), completion);
        Assert.True(estimated);
    }

    [Theory, MemberData(nameof(Kinds))]
    public async Task An_absurdly_low_usage_report_is_replaced_by_our_count_of_the_text(string kind)
    {
        var (client, userId) = await StartAsync(kind, FakeOpenAi.Behaviour.LowUsage);

        using var response = await client.SendAsync(StreamRequest(kind, "LOWUSAGE"), HttpCompletionOption.ResponseHeadersRead);
        var (received, sawError, sawDone) = await ReadAsync(await response.Content.ReadAsStreamAsync());

        Assert.Equal(LongReply.Text, received);
        Assert.False(sawError);
        Assert.True(sawDone);
        var (completion, estimated, _) = await BilledAsync(userId);
        AssertWithinTenPercent(Expected(kind, received), completion);
        Assert.True(estimated);
    }
}
