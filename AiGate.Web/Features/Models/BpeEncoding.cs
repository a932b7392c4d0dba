using System.Buffers;
using System.IO.Compression;
using System.Numerics;
using System.Reflection;
using System.Text;
using System.Text.Unicode;
using System.Text.RegularExpressions;

namespace AiGate.Web.Features.Models;

/// <summary>
/// One of OpenAI's byte-pair encodings (o200k_base, cl100k_base), held to count tokens and nothing else: every
/// token's bytes in one array and an open-addressing table from bytes to rank: 4.1 MB for o200k where the general
/// tokenizer keeps an encoder, a decoder and a string vocabulary of the same tokens in 40 MB (<c>bench/run.sh tokens</c>).
/// The counts are tiktoken's for ordinary text (<c>encode_ordinary</c>): the text is split into pieces by the
/// encoding's pattern, and a piece that is not itself a token is merged pair by pair, lowest rank
/// first (leftmost on a tie), until no adjacent pair is a token. The vocabularies are the ones the
/// Microsoft.ML.Tokenizers data packages ship; <c>BpeEncodingTests</c> hold every count to that library's.
/// Pieces that need merging are remembered (<see cref="Merged"/>): a prompt's words repeat, and merging is most of
/// the counting's time. Thread-safe: the vocabulary is never written after loading, and a remembered piece is an
/// immutable entry that replaces another whole.
/// </summary>
public sealed partial class BpeEncoding
{
    /// <summary>Pieces up to this many bytes are merged by scanning (tiktoken's way); longer ones with a heap.</summary>
    private const int ScanLimit = 128;

    private readonly byte[] _bytes;     // every token's bytes, in rank order
    private readonly int[] _starts;     // rank → where its bytes start in _bytes; _starts[count] is the end
    private readonly int[] _slots;      // open addressing: rank + 1, 0 = empty
    private readonly Regex _pieces;

    /// <summary>Remembered merges: a direct-mapped table of pieces up to <see cref="MergedMaxBytes"/> bytes and their token counts.</summary>
    private readonly MergedPiece?[] _merged = new MergedPiece?[MergedSlots];
    private const int MergedSlots = 4096, MergedMaxBytes = 48;

    private sealed class MergedPiece(byte[] bytes, int tokens)
    {
        public byte[] Bytes { get; } = bytes;
        public int Tokens { get; } = tokens;
    }

    /// <summary>o200k's splitting rules for ASCII text (<see cref="AsciiPieces.O200k"/>); else cl100k's.</summary>
    private readonly bool _o200k;

    private BpeEncoding(byte[] bytes, int[] starts, Regex pieces, bool o200k)
    {
        _bytes = bytes;
        _starts = starts;
        _pieces = pieces;
        _o200k = o200k;
        var count = starts.Length - 1;
        _slots = new int[(int)BitOperations.RoundUpToPowerOf2((uint)count * 2)];
        for (var rank = 0; rank < count; rank++)
        {
            var slot = Slot(Token(rank));
            while (_slots[slot] != 0) slot = (slot + 1) & (_slots.Length - 1);
            _slots[slot] = rank + 1;
        }
    }

    public static BpeEncoding O200kBase() => Load("Microsoft.ML.Tokenizers.Data.O200kBase", "o200k_base.tiktoken.deflate", O200kPieces(), o200k: true);

    public static BpeEncoding Cl100kBase() => Load("Microsoft.ML.Tokenizers.Data.Cl100kBase", "cl100k_base.tiktoken.deflate", Cl100kPieces(), o200k: false);

    /// <summary>
    /// The number of tokens the encoding makes of <paramref name="text"/>, as ordinary text: a special token's text
    /// (<c>&lt;|endoftext|&gt;</c>) counts as the characters it is, which is how a provider reads it in a message (a prompt
    /// cannot inject a special token) and never fewer tokens than counting it as one special token would.
    /// </summary>
    public int CountTokens(ReadOnlySpan<char> text)
    {
        var count = 0;
        byte[]? rented = null;
        Span<byte> buffer = stackalloc byte[256];
        try
        {
            // All ASCII (most English prompts and code): the patterns' pieces, found by hand (AsciiPieces).
            if (Ascii.IsValid(text))
                for (int i = 0, length; i < text.Length; i += length)
                {
                    length = _o200k ? AsciiPieces.O200k(text, i) : AsciiPieces.Cl100k(text, i);
                    count += CountPiece(text.Slice(i, length), ref buffer, ref rented);
                }
            else
                foreach (var match in _pieces.EnumerateMatches(text))
                    count += CountPiece(text.Slice(match.Index, match.Length), ref buffer, ref rented);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
        return count;
    }

    /// <summary>One piece's tokens: 1 when the piece is a token, else its merge. <paramref name="buffer"/> grows (rented) for a long piece.</summary>
    private int CountPiece(ReadOnlySpan<char> piece, ref Span<byte> buffer, ref byte[]? rented)
    {
        var needed = Encoding.UTF8.GetMaxByteCount(piece.Length);
        if (needed > buffer.Length)
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
            buffer = rented = ArrayPool<byte>.Shared.Rent(needed);
        }
        var bytes = buffer[..Utf8Bytes(piece, buffer)];
        return Rank(bytes) >= 0 ? 1 : Merged(bytes);
    }

    /// <summary>
    /// UTF-8, except that a lone surrogate becomes its own three bytes (WTF-8) rather than U+FFFD: what the reference
    /// tokenizer counts (a prompt with a broken emoji half is rare, and no provider bills it any better).
    /// </summary>
    private static int Utf8Bytes(ReadOnlySpan<char> text, Span<byte> destination)
    {
        if (Utf8.FromUtf16(text, destination, out _, out var written, replaceInvalidSequences: false) == OperationStatus.Done) return written;
        written = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (i + 1 < text.Length && char.IsSurrogatePair(text[i], text[i + 1]))
            {
                written += new Rune(text[i], text[i + 1]).EncodeToUtf8(destination[written..]);
                i++;
                continue;
            }
            uint c = text[i];
            if (c <= 0x7F) destination[written++] = (byte)c;
            else if (c <= 0x7FF)
            {
                destination[written++] = (byte)(0xC0 | (c >> 6));
                destination[written++] = (byte)(0x80 | (c & 0x3F));
            }
            else
            {
                destination[written++] = (byte)(0xE0 | (c >> 12));
                destination[written++] = (byte)(0x80 | ((c >> 6) & 0x3F));
                destination[written++] = (byte)(0x80 | (c & 0x3F));
            }
        }
        return written;
    }

    /// <summary>
    /// The tokens of a piece that is not itself a token: remembered when it is short (the table holds the last piece
    /// seen in each slot, checked byte for byte), else merged each time, by scanning or, when long, with a heap.
    /// (issue 16: a 14 KB C# file, counted by the pattern's path, 207 → 112 µs with the table.)
    /// </summary>
    private int Merged(ReadOnlySpan<byte> piece)
    {
        if (piece.Length > MergedMaxBytes) return piece.Length <= ScanLimit ? MergeByScanning(piece) : MergeWithHeap(piece);
        var slot = (int)(Hash(piece) & (MergedSlots - 1));
        if (Volatile.Read(ref _merged[slot]) is { } seen && seen.Bytes.AsSpan().SequenceEqual(piece)) return seen.Tokens;
        var tokens = MergeByScanning(piece);
        Volatile.Write(ref _merged[slot], new MergedPiece(piece.ToArray(), tokens));
        return tokens;
    }

    /// <summary>tiktoken's merge: the part boundaries with the rank of the pair each one starts, lowest merged first.</summary>
    private int MergeByScanning(ReadOnlySpan<byte> piece)
    {
        Span<(int Start, int Rank)> parts = stackalloc (int, int)[piece.Length + 1];
        var length = piece.Length + 1;
        for (var i = 0; i < piece.Length - 1; i++) parts[i] = (i, PairRank(piece, i, i + 2));
        parts[piece.Length - 1] = (piece.Length - 1, int.MaxValue);
        parts[piece.Length] = (piece.Length, int.MaxValue);
        while (true)
        {
            var (best, at) = (int.MaxValue, -1);
            for (var i = 0; i < length - 1; i++)
                if (parts[i].Rank < best) (best, at) = (parts[i].Rank, i);
            if (at < 0) return length - 1;
            // The pair at `at` becomes one part: it and its left neighbour now start longer pairs.
            if (at > 0) parts[at - 1].Rank = at + 2 < length ? PairRank(piece, parts[at - 1].Start, parts[at + 2].Start) : int.MaxValue;
            parts[at].Rank = at + 3 < length ? PairRank(piece, parts[at].Start, parts[at + 3].Start) : int.MaxValue;
            parts[(at + 2)..length].CopyTo(parts[(at + 1)..]);
            length--;
        }
    }

    /// <summary>
    /// The same merges as <see cref="MergeByScanning"/> in O(n log n) for a long piece (a prompt of one 100 KB word
    /// would take minutes the scanning way): parts in a linked list, pairs in a heap by (rank, start).
    /// </summary>
    private int MergeWithHeap(ReadOnlySpan<byte> piece)
    {
        var n = piece.Length;
        var next = ArrayPool<int>.Shared.Rent(n + 1);
        var previous = ArrayPool<int>.Shared.Rent(n + 1);
        var rank = ArrayPool<int>.Shared.Rent(n + 1);
        try
        {
            var heap = new PriorityQueue<int, long>(n);
            for (var i = 0; i <= n; i++) (next[i], previous[i]) = (i + 1, i - 1);
            for (var i = 0; i < n; i++)
            {
                rank[i] = i + 2 <= n ? PairRank(piece, i, i + 2) : int.MaxValue;
                if (rank[i] != int.MaxValue) heap.Enqueue(i, Priority(rank[i], i));
            }
            var parts = n;
            while (heap.TryDequeue(out var at, out var priority))
            {
                if (rank[at] == int.MaxValue || Priority(rank[at], at) != priority) continue;   // merged away or re-ranked since
                var right = next[at];
                next[at] = next[right];
                previous[next[right]] = at;
                rank[right] = int.MaxValue;
                parts--;
                Rerank(piece, at, next, rank, heap);
                if (previous[at] >= 0) Rerank(piece, previous[at], next, rank, heap);
            }
            return parts;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(next);
            ArrayPool<int>.Shared.Return(previous);
            ArrayPool<int>.Shared.Return(rank);
        }
    }

    /// <summary>The rank of the pair that now starts at <paramref name="start"/> (the part there and the next one), queued.</summary>
    private void Rerank(ReadOnlySpan<byte> piece, int start, int[] next, int[] rank, PriorityQueue<int, long> heap)
    {
        var end = next[next[start]];   // the sentinel at piece.Length links past the end
        rank[start] = end <= piece.Length ? PairRank(piece, start, end) : int.MaxValue;
        if (rank[start] != int.MaxValue) heap.Enqueue(start, Priority(rank[start], start));
    }

    private static long Priority(int rank, int start) => ((long)rank << 32) | (uint)start;

    private int PairRank(ReadOnlySpan<byte> piece, int start, int end)
    {
        var rank = Rank(piece[start..end]);
        return rank < 0 ? int.MaxValue : rank;
    }

    /// <summary>The token's rank, or −1 when these bytes are not a token.</summary>
    private int Rank(ReadOnlySpan<byte> bytes)
    {
        var slot = Slot(bytes);
        while (true)
        {
            var entry = _slots[slot];
            if (entry == 0) return -1;
            if (Token(entry - 1).SequenceEqual(bytes)) return entry - 1;
            slot = (slot + 1) & (_slots.Length - 1);
        }
    }

    private ReadOnlySpan<byte> Token(int rank) => _bytes.AsSpan(_starts[rank], _starts[rank + 1] - _starts[rank]);

    /// <summary>FNV-1a: the table is fixed, so no query can lengthen a probe beyond the table's own longest run.</summary>
    private int Slot(ReadOnlySpan<byte> bytes) => (int)(Hash(bytes) & (uint)(_slots.Length - 1));

    private static uint Hash(ReadOnlySpan<byte> bytes)
    {
        var hash = 2166136261u;
        foreach (var b in bytes) hash = (hash ^ b) * 16777619u;
        return hash;
    }

    /// <summary>
    /// Reads a data package's vocabulary: a <c>Capacity: N</c> line, then one base64 token a line in rank order
    /// (an explicit rank after a space must be the line's).
    /// </summary>
    private static BpeEncoding Load(string assembly, string resource, Regex pieces, bool o200k)
    {
        using var stream = Assembly.Load(assembly).GetManifestResourceStream(resource)
            ?? throw new InvalidDataException($"{assembly} has no resource {resource}.");
        using var reader = new StreamReader(new DeflateStream(stream, CompressionMode.Decompress), Encoding.ASCII);
        var bytes = new List<byte>(2 << 20);
        var starts = new List<int>(200_001);
        Span<byte> token = stackalloc byte[512];
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var space = line.IndexOf(' ');
            if (space > 0 && int.Parse(line.AsSpan(space + 1)) != starts.Count)
                throw new InvalidDataException($"{resource}: ranks are not consecutive at line {starts.Count}.");
            if (!Convert.TryFromBase64Chars(space > 0 ? line.AsSpan(0, space) : line, token, out var written))
                throw new InvalidDataException($"{resource}: line {starts.Count} is not base64.");
            starts.Add(bytes.Count);
            bytes.AddRange(token[..written]);
        }
        starts.Add(bytes.Count);
        return new BpeEncoding([.. bytes], [.. starts], pieces, o200k);
    }

    // The patterns Microsoft.ML.Tokenizers splits with (tiktoken's, written for .NET's engine).
    [GeneratedRegex(@"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")]
    private static partial Regex O200kPieces();

    [GeneratedRegex(@"'(?i:[sdmt]|ll|ve|re)|(?>[^\r\n\p{L}\p{N}]?)(?>\p{L}+)|(?>\p{N}{1,3})| ?(?>[^\s\p{L}\p{N}]+)(?>[\r\n]*)|(?>\s+)$|\s*[\r\n]|\s+(?!\S)|\s")]
    private static partial Regex Cl100kPieces();
}
