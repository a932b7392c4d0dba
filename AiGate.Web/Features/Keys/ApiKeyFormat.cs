using System.Security.Cryptography;
using System.Text;

namespace AiGate.Web.Features.Keys;

/// <summary>
/// The API key format (RELIABILITY K1): <c>ag_live_</c> or <c>ag_test_</c>, then 43 base62 characters
/// carrying 256 random bits from the CSPRNG, then a 6-character base62 CRC-32 of everything before it.
/// Secret scanners recognise the prefix, a double-click selects the whole key (no dashes), and a
/// mistyped or made-up key is rejected without touching the database.
/// </summary>
public static class ApiKeyFormat
{
    public const string LivePrefix = "ag_live_";
    public const string TestPrefix = "ag_test_";
    private const int PrefixLength = 8;
    private const int BodyLength = 43;       // ceil(256 / log2(62))
    private const int ChecksumLength = 6;    // 62^6 > 2^32
    public const int Length = PrefixLength + BodyLength + ChecksumLength;

    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>A new key. <paramref name="live"/> picks the environment prefix.</summary>
    public static string Generate(bool live = true)
    {
        Span<byte> random = stackalloc byte[32];
        RandomNumberGenerator.Fill(random);
        var sb = new StringBuilder(Length);
        sb.Append(live ? LivePrefix : TestPrefix);
        AppendBase62(sb, random, BodyLength);
        Span<byte> crc = stackalloc byte[4];
        BitConverter.TryWriteBytes(crc, Crc32(Encoding.ASCII.GetBytes(sb.ToString())));
        if (BitConverter.IsLittleEndian) crc.Reverse();
        AppendBase62(sb, crc, ChecksumLength);
        return sb.ToString();
    }

    /// <summary>True when <paramref name="key"/> has the right prefix, length, alphabet and checksum.</summary>
    public static bool IsWellFormed(ReadOnlySpan<char> key)
    {
        if (key.Length != Length) return false;
        if (!key.StartsWith(LivePrefix, StringComparison.Ordinal) && !key.StartsWith(TestPrefix, StringComparison.Ordinal)) return false;
        Span<byte> ascii = stackalloc byte[Length];
        for (var i = 0; i < key.Length; i++)
        {
            var c = key[i];
            if (i >= PrefixLength && !char.IsAsciiLetterOrDigit(c)) return false;
            ascii[i] = (byte)c;
        }
        var expected = Crc32(ascii[..(PrefixLength + BodyLength)]);
        ulong actual = 0;
        foreach (var c in key[(PrefixLength + BodyLength)..]) actual = actual * 62 + (ulong)Alphabet.IndexOf(c, StringComparison.Ordinal);
        return actual == expected;
    }

    public static bool IsLive(ReadOnlySpan<char> key) => key.StartsWith(LivePrefix, StringComparison.Ordinal);

    /// <summary>What the UI shows instead of the key: the prefix plus four characters, and the last four.</summary>
    public static (string Prefix, string Last4) Describe(string key) => (key[..(PrefixLength + 4)], key[^4..]);

    /// <summary>Fixed-width big-endian base62 of <paramref name="bytes"/>.</summary>
    private static void AppendBase62(StringBuilder sb, ReadOnlySpan<byte> bytes, int width)
    {
        var value = new System.Numerics.BigInteger(bytes, isUnsigned: true, isBigEndian: true);
        Span<char> digits = stackalloc char[width];
        for (var i = width - 1; i >= 0; i--)
        {
            value = System.Numerics.BigInteger.DivRem(value, 62, out var rem);
            digits[i] = Alphabet[(int)rem];
        }
        sb.Append(digits);
    }

    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>CRC-32 (IEEE 802.3, as zlib). System.IO.Hashing is not in our package source.</summary>
    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFF_FFFFu;
        foreach (var b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB8_8320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
