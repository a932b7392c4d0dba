using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Models;
using Microsoft.ML.Tokenizers;

namespace AiGate.Web.Tests.Features.Models;

/// <summary>
/// The compact encodings count exactly what Microsoft.ML.Tokenizers' tiktoken counts for ordinary text (the reference
/// here: the library's own vocabulary and splitting pattern, without its special tokens), text by text: prose in many
/// scripts, code, numbers, whitespace runs, special tokens' text, broken surrogates, and pieces long enough to take the
/// heap merge.
/// </summary>
public sealed class BpeEncodingTests
{
    private static readonly Lazy<(BpeEncoding Ours, Tokenizer Reference)> O200k =
        new(() => (BpeEncoding.O200kBase(), Reference("O200kBase", "o200k_base")));
    private static readonly Lazy<(BpeEncoding Ours, Tokenizer Reference)> Cl100k =
        new(() => (BpeEncoding.Cl100kBase(), Reference("Cl100kBase", "cl100k_base")));

    public static TheoryData<string> Encodings => ["o200k_base", "cl100k_base"];

    private static (BpeEncoding Ours, Tokenizer Reference) Pair(string encoding) => encoding == "o200k_base" ? O200k.Value : Cl100k.Value;

    /// <summary>
    /// The library's tiktoken over the data package's vocabulary without special tokens (<c>encode_ordinary</c>). Its
    /// splitting pattern is taken from the library's own tokenizer for the encoding (it is not public, hence reflection),
    /// so a mistake in our copy of the pattern shows here.
    /// </summary>
    private static Tokenizer Reference(string package, string encoding)
    {
        var pattern = LibraryPattern(encoding);
        var data = Assembly.Load($"Microsoft.ML.Tokenizers.Data.{package}").GetManifestResourceStream($"{encoding}.tiktoken.deflate")!;
        using var vocabulary = new DeflateStream(data, CompressionMode.Decompress);
        return TiktokenTokenizer.Create(vocabulary, new RegexPreTokenizer(pattern, null), normalizer: null, specialTokens: null);
    }

    /// <summary>The library's own splitting pattern for the encoding (not public, hence reflection).</summary>
    private static Regex LibraryPattern(string encoding)
    {
        var library = TiktokenTokenizer.CreateForEncoding(encoding).PreTokenizer!;
        return (Regex)library.GetType().GetField("_regex", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(library)!;
    }

    private static readonly string[] Texts =
    [
        "",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog. I'm sure they'll've DONE it; WE'RE here, you'd SEE.",
        "Счёт: 1,048,576 токенов — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and code { x += 1; }",
        "日本語のテキストはトークンが多くなります。中文也一样，한국어도 마찬가지입니다.",
        "مرحبا بالعالم — שלום עולם — नमस्ते दुनिया — สวัสดีชาวโลก",
        "emoji 👩‍👩‍👧‍👦🏳️‍🌈🇯🇵 and combining é ñ ữ",
        "public static async Task<int> Main(string[] args)\n{\n    await Console.Out.WriteLineAsync($\"{args.Length}\");\n\treturn 0;\n}\n",
        "def f(x):\r\n    return [i ** 2 for i in range(x)]  # squares\r\n\r\n\r\n",
        "1234567890 3.14159 -42 1e-10 0x1F 2026-12-04T22:27:18Z $1,000,000.00",
        "    leading and trailing spaces    ",
        "\n\n\n  \t \n tabs\tand\u00a0no-break\u2003spaces \n",
        "<|endoftext|>",
        "before<|endoftext|>after <|endofprompt|> <|fim_prefix|>x<|fim_middle|>y<|fim_suffix|> <|notspecial|> <| |>",
        "trailing space before a special  <|endoftext|>  and after",
        "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\",\"description\":\"what to look up\"}},\"required\":[\"q\"]}",
        "lone surrogates \ud800 here \udc00 and there \ud83d",
        "https://example.com/path/to/resource?query=string&other=value#fragment //comment /* block */",
        "ALLCAPSWORDSRUNTOGETHER camelCaseWordsRunTogether snake_case_words_run_together",
        "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'Ve don't WON'T",
    ];

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Every_text_counts_what_the_reference_counts(string encoding)
    {
        var (ours, reference) = Pair(encoding);
        foreach (var text in Texts)
            Assert.True(reference.CountTokens(text) == ours.CountTokens(text), $"{encoding}: {reference.CountTokens(text)} ≠ {ours.CountTokens(text)} for {text}");
    }

    [Theory]
    [InlineData("o200k_base", 7)]
    [InlineData("cl100k_base", 7)]
    public void A_special_tokens_text_counts_as_the_text_it_is_every_time(string encoding, int expected)
    {
        // Microsoft.ML.Tokenizers' own encodings count it as 1 special token when cold and as 7 once its cache has seen
        // the text as ordinary pieces (measured: its total for this repository's files rose from 729,713 to 729,803 on
        // a second pass). A provider reads it as text; so do we, the same on every call.
        var (ours, _) = Pair(encoding);
        Assert.Equal(expected, ours.CountTokens("<|endoftext|>"));
        Assert.Equal(expected, ours.CountTokens("<|endoftext|>"));
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Random_text_from_a_mixed_alphabet_counts_what_the_reference_counts(string encoding)
    {
        var (ours, reference) = Pair(encoding);
        // Letters, digits, punctuation, whitespace and non-Latin scripts in random runs: pieces of every kind and length.
        string[] alphabet = ["a", "e", "t", "Q", "z", " ", " ", "  ", "\n", "\r\n", "\t", "0", "7", "9", ".", ",", "'", "'s", "!", "?", "/", "{", "}",
            "é", "ж", "Я", "日", "本", "ア", "한", "ع", "🙂", "\u0301", "<|", "|>", "<|endoftext|>", "-", "_", "$", "ſ", "ǅ"];
        var random = new Random(20261204);
        for (var round = 0; round < 300; round++)
        {
            var text = new StringBuilder();
            for (var i = random.Next(1, 120); i > 0; i--) text.Append(alphabet[random.Next(alphabet.Length)]);
            var s = text.ToString();
            Assert.True(reference.CountTokens(s) == ours.CountTokens(s), $"{encoding}: {reference.CountTokens(s)} ≠ {ours.CountTokens(s)} for {s}");
        }
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Long_pieces_take_the_heap_merge_and_count_the_same(string encoding)
    {
        var (ours, reference) = Pair(encoding);
        var random = new Random(7);
        string[] pieces =
        [
            new string('a', 129),   // just over the scanning limit
            new string('a', 5_000),
            string.Concat(Enumerable.Range(0, 2_000).Select(i => (char)('a' + random.Next(26)))),
            string.Concat(Enumerable.Range(0, 1_000).Select(i => "日本語"[random.Next(3)])),
            new string('!', 3_000) + new string(' ', 3_000) + "x",
            string.Concat(Enumerable.Repeat("abab", 500)),
        ];
        foreach (var piece in pieces)
            Assert.True(reference.CountTokens(piece) == ours.CountTokens(piece), $"{encoding}: {reference.CountTokens(piece)} ≠ {ours.CountTokens(piece)} for a piece of {piece.Length}");
    }

    /// <summary>
    /// ASCII text is split by hand (<see cref="AsciiPieces"/>), not by the pattern: every piece, over thousands of random
    /// texts made of what the patterns treat differently (cases, contractions, digit runs, every ASCII whitespace, line
    /// breaks in runs, slashes, control characters), must be the pattern's piece, boundary for boundary.
    /// </summary>
    [Theory]
    [MemberData(nameof(Encodings))]
    public void Ascii_text_splits_into_the_patterns_own_pieces(string encoding)
    {
        var pattern = LibraryPattern(encoding);
        string[] alphabet = ["a", "z", "A", "Z", "q", "Q", "'", "'s", "'S", "'t", "'re", "'RE", "'ve", "'ll", "'Ll", "'m", "'d", "'x", "s", "t", "l", "e",
            "0", "5", "9", "123", "4567", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\v", "\f", ".", ",", "!", "/", "//", "-", "_", "{", "\"", "\u0001",
            "\u001c", "\u007f", "@", "[", "`", "~", "\\"];
        var random = new Random(encoding.Length * 31 + 5);
        for (var round = 0; round < 5_000; round++)
        {
            var text = new StringBuilder();
            for (var i = random.Next(1, 30); i > 0; i--) text.Append(alphabet[random.Next(alphabet.Length)]);
            var s = text.ToString();
            var expected = pattern.Matches(s).Select(m => m.Value).ToArray();
            var actual = new List<string>();
            for (int at = 0, length; at < s.Length; at += length)
            {
                length = encoding == "o200k_base" ? AsciiPieces.O200k(s, at) : AsciiPieces.Cl100k(s, at);
                actual.Add(s.Substring(at, length));
            }
            Assert.True(expected.SequenceEqual(actual),
                $"{encoding}: {Show(s)}\npattern: {string.Join(" | ", expected.Select(Show))}\nby hand: {string.Join(" | ", actual.Select(Show))}");
        }

        static string Show(string text) => JsonSerializer.Serialize(text);
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Counting_the_same_words_again_counts_the_same(string encoding)
    {
        // Pieces that need merging are remembered: the second, third… count of a text must be the first's, and the reference's.
        var (ours, reference) = Pair(encoding);
        var text = string.Concat(Enumerable.Repeat("Unremarkable antidisestablishmentarianism, reconfigurability; überfall ", 40));
        var expected = reference.CountTokens(text);
        for (var i = 0; i < 3; i++) Assert.Equal(expected, ours.CountTokens(text));
        Assert.Equal(reference.CountTokens("antidisestablishmentarian"), ours.CountTokens("antidisestablishmentarian"));
    }
}
