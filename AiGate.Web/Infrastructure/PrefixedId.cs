using System.Buffers.Binary;
using System.Security.Cryptography;

namespace AiGate.Web.Infrastructure;

/// <summary>
/// Our ids as users see them: a prefix, then a time-ordered GUID's 32 hex digits ("req_0193…", "chatcmpl-0193…"),
/// laid out as RFC 9562's version 7: the Unix time in milliseconds, then 74 bits that keep ids apart. Those bits are not
/// drawn per id from the operating system's generator (<see cref="Guid.CreateVersion7()"/> did, 1.8 µs of every call's
/// CPU, issue 16): they are this process's own 42 random bits, drawn once, and a 32-bit counter (RFC 9562 §6.2's
/// counter method). Within a process no two ids share a millisecond and a count; two processes share an id only if
/// they drew the same 42 bits and reached the same count in the same millisecond. Ids are unique, not secret: users
/// quote them, and nothing grants access by one.
/// </summary>
public static class PrefixedId
{
    private static readonly ulong Instance = BinaryPrimitives.ReadUInt64LittleEndian(RandomNumberGenerator.GetBytes(8)) & ((1UL << 42) - 1);
    private static int _counter = RandomNumberGenerator.GetInt32(int.MaxValue);

    /// <summary>A new id, made as one string (the hot path makes two or three per call).</summary>
    public static string New(string prefix) => string.Create(prefix.Length + 32, (prefix, Next()), static (span, s) =>
    {
        s.prefix.CopyTo(span);
        s.Item2.TryFormat(span[s.prefix.Length..], out _, "N");
    });

    /// <summary>
    /// The next version-7 GUID: 48 bits of Unix milliseconds, the version, the counter's top 12 bits; the variant, the
    /// counter's low 20 bits, the instance's 42.
    /// </summary>
    internal static Guid Next()
    {
        var milliseconds = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var count = (uint)Interlocked.Increment(ref _counter);
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (milliseconds << 16) | 0x7000 | (count >> 20));
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], 0x8000_0000_0000_0000UL | ((ulong)(count & 0xF_FFFF) << 42) | Instance);
        return new Guid(bytes, bigEndian: true);
    }
}
