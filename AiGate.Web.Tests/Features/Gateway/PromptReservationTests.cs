using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// The reservation's prompt part is counted with the model's tokenizer (issue 11, tokenizer): an upper
/// bound of what the provider will count, and a close one. The refusal message names the worst case,
/// and the test model costs 1 µ$ a token, so the worst case in µ$ is the tokens reserved.
/// </summary>
public sealed partial class PromptReservationTests(StreamBillingApp app) : IClassFixture<StreamBillingApp>
{
    private const int MaxTokens = 100;
    private static readonly Tokenizer O200k = TiktokenTokenizer.CreateForEncoding("o200k_base");

    /// <summary>Numbers: tokens come in groups of up to 3 digits, so bytes / 3 (the old estimate) is under the real count.</summary>
    private static string Csv()
    {
        var random = new Random(7);
        return "Sum the second column:\n" + string.Join("\n", Enumerable.Range(0, 40).Select(_ =>
            $"{random.Next(100000, 999999)},{(random.NextDouble() * 1000).ToString("F4", CultureInfo.InvariantCulture)},{random.Next(1, 99999)},{random.Next()}"));
    }

    /// <summary>Plain English: about 4.5 bytes a token, so bytes / 3 reserved half as much again as needed.</summary>
    private static string Prose() => string.Join(' ', Enumerable.Repeat(
        "A client that leaves early still pays for the text it was sent, because the provider produced it and bills us for it.", 20));

    private async Task<(HttpStatusCode Status, long WorstCaseMicros)> AskAsync(string prompt, long creditMicros)
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: creditMicros);
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", new Dictionary<string, object?>
        {
            ["model"] = StreamBillingApp.Gpt, ["max_tokens"] = MaxTokens, ["messages"] = new[] { new { role = "user", content = prompt } },
        });
        if (response.StatusCode != HttpStatusCode.PaymentRequired) return (response.StatusCode, -1);
        var message = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["message"]!.GetValue<string>();
        var usd = decimal.Parse(WorstCase().Match(message).Groups[1].Value, CultureInfo.InvariantCulture);
        return (response.StatusCode, (long)(usd * 1_000_000m));
    }

    [Theory]
    [InlineData("csv")]
    [InlineData("prose")]
    public async Task The_reservation_holds_the_prompts_real_token_count_with_a_small_margin(string kind)
    {
        app.OpenAi.Reset();
        var prompt = kind == "csv" ? Csv() : Prose();
        var tokens = O200k.CountTokens(prompt) + 4 + 3;   // the message's framing and the reply's priming, as OpenAI counts them

        var (status, worstCase) = await AskAsync(prompt, creditMicros: 1);

        Assert.Equal(HttpStatusCode.PaymentRequired, status);
        Assert.InRange(worstCase - MaxTokens, tokens, tokens * 1.25);
        Assert.Equal(0, app.OpenAi.ChatRequests);
    }

    [Fact]
    public async Task A_balance_that_covers_the_counted_worst_case_is_served()
    {
        app.OpenAi.Reset();
        var prompt = Prose();
        var bound = (O200k.CountTokens(prompt) + 7) * 1.25 + MaxTokens;   // under what bytes / 3 reserved (≈ 1.5× the prompt's tokens)

        var (status, _) = await AskAsync(prompt, creditMicros: (long)bound);

        Assert.Equal(HttpStatusCode.OK, status);
    }

    [GeneratedRegex(@"may cost up to \$([0-9]+(?:\.[0-9]+)?)")]
    private static partial Regex WorstCase();
}
