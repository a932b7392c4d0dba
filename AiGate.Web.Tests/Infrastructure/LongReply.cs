using System.Text;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// A long technical answer (~800 tokens of prose, tables, code and numbers, the same every run) that the fake
/// providers stream a few words per event, to test what a stream broken half-way is billed.
/// </summary>
public static class LongReply
{
    private static readonly string[] Sentences =
    [
        "The gateway forwards every chunk as soon as it arrives, and it keeps a count of what went out.",
        "In 2024, roughly 37% of the requests we measured were streamed; the median answer had 412 tokens.",
        "A client that leaves early still pays for the text it was sent, because the provider produced it.",
        "Tokenizers split words like \"reservation\" and \"nondeterministic\" into several pieces, often 2 or 3.",
        "When the upstream stalls for longer than the idle timeout, the stream ends with an error event.",
        "Prices are integers: 1,000,000 micro-dollars make one dollar, and every charge is rounded up once.",
        // Tables, code and numbers: dense text, where bytes / 4 undercounts tokens by half.
        "| 2024-11-03 | 17:42:09 | 0.000318 | 1,204 | ok |",
        "for (var i = 0; i < n; i++) { total += w[i] * x[i]; }",
        "`usage = {\"prompt_tokens\": 1187, \"completion_tokens\": 4096}`",
        "2^10 = 1024; 2^16 = 65,536; 2^20 = 1,048,576 (bytes).",
    ];

    /// <summary>The events' texts in order: three words each, every piece after the first starting with a space.</summary>
    public static IReadOnlyList<string> Pieces { get; } = Build();

    public static string Text => string.Concat(Pieces);

    /// <summary>What the fakes send before they stall, drop or break: the first half of the pieces.</summary>
    public static string FirstHalf => string.Concat(Pieces.Take(Pieces.Count / 2));

    /// <summary>Hidden reasoning (Anthropic thinking deltas): produced and billed, never forwarded.</summary>
    public const string Thinking = "The user wants a long answer about gateways, billing and tokenizers. I will explain streaming, " +
        "idle timeouts and integer prices, with a few numbers to make it concrete, and keep each sentence short.";

    private static List<string> Build()
    {
        var random = new Random(20261204);
        var text = new StringBuilder();
        // Prose and dense lines take turns, as in an answer that explains a table or a snippet line by line.
        for (var i = 0; i < 36; i++) text.Append(i == 0 ? "" : " ").Append(Sentences[i % 2 == 0 ? random.Next(6) : 6 + random.Next(Sentences.Length - 6)]);
        var words = text.ToString().Split(' ');
        var pieces = new List<string>();
        for (var i = 0; i < words.Length; i += 3)
            pieces.Add((i == 0 ? "" : " ") + string.Join(' ', words.Skip(i).Take(3)));
        return pieces;
    }
}
