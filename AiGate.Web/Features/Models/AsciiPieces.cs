namespace AiGate.Web.Features.Models;

/// <summary>
/// The two encodings' splitting patterns (<see cref="BpeEncoding"/>) written out by hand for text that is all ASCII: the
/// same pieces the regular expressions make, without the engine (issue 16: with the table of merges in <see cref="BpeEncoding"/>,
/// an 8 KB English prompt counts in 35 µs instead of 55, cl100k, Release, steady state). For ASCII the patterns' classes are simple: a letter is
/// A–Z or a–z (upper and lower), a number 0–9, whitespace (<c>\s</c>) tab, line feed, vertical tab, form feed, carriage
/// return and space; everything else is "other". <c>BpeEncodingTests</c> hold every piece to the library's own pattern.
/// </summary>
internal static class AsciiPieces
{
    /// <summary>The length of the cl100k_base piece that starts at <paramref name="i"/> (<paramref name="text"/> is all ASCII).</summary>
    public static int Cl100k(ReadOnlySpan<char> text, int i)
    {
        var c = text[i];
        // '(?i:[sdmt]|ll|ve|re)
        if (c == '\'' && Contraction(text, i) is > 0 and var contraction) return contraction;
        // (?>[^\r\n\p{L}\p{N}]?)(?>\p{L}+)
        var j = IsPrefix(c) ? i + 1 : i;
        if (j < text.Length && IsLetter(text[j])) return While(text, j, IsLetter) - i;
        // (?>\p{N}{1,3})
        if (IsDigit(c)) return Digits(text, i) - i;
        //  ?(?>[^\s\p{L}\p{N}]+)(?>[\r\n]*)
        j = c == ' ' && i + 1 < text.Length && IsOther(text[i + 1]) ? i + 1 : i;
        if (IsOther(text[j])) return While(text, While(text, j, IsOther), IsNewline) - i;
        // (?>\s+)$ then \s*[\r\n], \s+(?!\S), \s
        var end = While(text, i, IsSpace);
        return end == text.Length ? end - i : Whitespace(text, i, end);
    }

    /// <summary>The length of the o200k_base piece that starts at <paramref name="i"/> (<paramref name="text"/> is all ASCII).</summary>
    public static int O200k(ReadOnlySpan<char> text, int i)
    {
        var c = text[i];
        // [^\r\n\p{L}\p{N}]?[upper]*[lower]+(contraction)?  |  [^\r\n\p{L}\p{N}]?[upper]+[lower]*(contraction)?
        var j = IsPrefix(c) ? i + 1 : i;
        var uppers = While(text, j, IsUpper);
        var lowers = While(text, uppers, IsLower);
        if (lowers > j) return WithContraction(text, lowers) - i;
        // \p{N}{1,3}
        if (IsDigit(c)) return Digits(text, i) - i;
        //  ?[^\s\p{L}\p{N}]+[\r\n/]*
        j = c == ' ' && i + 1 < text.Length && IsOther(text[i + 1]) ? i + 1 : i;
        if (IsOther(text[j])) return While(text, While(text, j, IsOther), static ch => IsNewline(ch) || ch == '/') - i;
        // \s*[\r\n]+, \s+(?!\S), \s+
        return Whitespace(text, i, While(text, i, IsSpace));
    }

    /// <summary>
    /// A whitespace run <paramref name="i"/>..<paramref name="end"/>: up to its last line break (<c>\s*[\r\n]</c>); else all
    /// of it at the text's end, all but its last character before other text (<c>\s+(?!\S)</c>), or one character.
    /// </summary>
    private static int Whitespace(ReadOnlySpan<char> text, int i, int end)
    {
        for (var p = end - 1; p >= i; p--)
            if (IsNewline(text[p])) return p - i + 1;
        if (end == text.Length) return end - i;
        return end - i >= 2 ? end - i - 1 : 1;
    }

    /// <summary>cl100k's contraction piece at an apostrophe: its length, or 0.</summary>
    private static int Contraction(ReadOnlySpan<char> text, int i)
    {
        if (i + 1 >= text.Length) return 0;
        var first = (char)(text[i + 1] | 0x20);
        if (first is 's' or 'd' or 'm' or 't') return 2;
        if (i + 2 >= text.Length) return 0;
        var second = (char)(text[i + 2] | 0x20);
        return (first, second) is ('l', 'l') or ('v', 'e') or ('r', 'e') ? 3 : 0;
    }

    /// <summary>o200k's optional contraction after a word: where the piece ends.</summary>
    private static int WithContraction(ReadOnlySpan<char> text, int at)
    {
        if (at + 1 >= text.Length || text[at] != '\'') return at;
        var first = (char)(text[at + 1] | 0x20);
        if (first is 's' or 't' or 'm' or 'd') return at + 2;
        if (at + 2 >= text.Length) return at;
        var second = (char)(text[at + 2] | 0x20);
        return (first, second) is ('r', 'e') or ('v', 'e') or ('l', 'l') ? at + 3 : at;
    }

    private static int Digits(ReadOnlySpan<char> text, int i)
    {
        var end = i;
        while (end < text.Length && end - i < 3 && IsDigit(text[end])) end++;
        return end;
    }

    private static int While(ReadOnlySpan<char> text, int from, Func<char, bool> test)
    {
        while (from < text.Length && test(text[from])) from++;
        return from;
    }

    private static bool IsUpper(char c) => c is >= 'A' and <= 'Z';
    private static bool IsLower(char c) => c is >= 'a' and <= 'z';
    private static bool IsLetter(char c) => (char)(c | 0x20) is >= 'a' and <= 'z';
    private static bool IsDigit(char c) => c is >= '0' and <= '9';
    private static bool IsSpace(char c) => c == ' ' || c is >= '\t' and <= '\r';
    private static bool IsNewline(char c) => c is '\r' or '\n';
    /// <summary><c>[^\s\p{L}\p{N}]</c>: punctuation, symbols and the control characters that are not whitespace.</summary>
    private static bool IsOther(char c) => !IsSpace(c) && !IsLetter(c) && !IsDigit(c);
    /// <summary><c>[^\r\n\p{L}\p{N}]</c>: what may stand before a word in its piece (a space, a tab, punctuation…).</summary>
    private static bool IsPrefix(char c) => !IsNewline(c) && !IsLetter(c) && !IsDigit(c);
}
