using System.Buffers.Binary;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The duration of an uploaded audio file, read from the file itself, to reserve a transcription before it goes upstream.
/// WAV: exact (data chunk size / byte rate from the fmt chunk). MP3: from the first frame header (skipping an ID3v2 tag);
/// a Xing/Info header's frame count when present, else the first frame's bitrate over the rest of the file (exact for
/// constant bitrate). Anything else: the worst case, the whole file at <see cref="FloorBitsPerSecond"/>, so a
/// reservation can never be short.
/// </summary>
public static class AudioDuration
{
    /// <summary>8 kbit/s: below what any speech codec OpenAI accepts produces usable audio at, so no real file lasts longer.</summary>
    public const int FloorBitsPerSecond = 8_000;
    private static readonly int[] Mpeg1Layer3Kbps = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0];
    private static readonly int[] Mpeg2Layer3Kbps = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0];
    private static readonly int[] Mpeg1Rates = [44100, 48000, 32000, 0];

    /// <summary>Seconds of audio, and how they were found ("wav", "mp3", "size").</summary>
    public static (double Seconds, string Method) Read(Stream file, long length)
    {
        var head = new byte[Math.Min(length, 64 * 1024)];
        file.ReadExactly(head);
        if (Wav(head, file, length) is { } wav) return (wav, "wav");
        if (Mp3(head, length) is { } mp3) return (mp3, "mp3");
        return (length * 8.0 / FloorBitsPerSecond, "size");
    }

    private static double? Wav(byte[] head, Stream file, long length)
    {
        if (head.Length < 12 || !head.AsSpan(0, 4).SequenceEqual("RIFF"u8) || !head.AsSpan(8, 4).SequenceEqual("WAVE"u8)) return null;
        long position = 12;
        var header = new byte[8];
        uint? byteRate = null;
        while (position + 8 <= length)
        {
            file.Position = position;
            file.ReadExactly(header);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
            if (header.AsSpan(0, 4).SequenceEqual("fmt "u8) && size >= 16)
            {
                var fmt = new byte[16];
                file.ReadExactly(fmt);
                byteRate = BinaryPrimitives.ReadUInt32LittleEndian(fmt.AsSpan(8));
            }
            else if (header.AsSpan(0, 4).SequenceEqual("data"u8))
            {
                if (byteRate is not ({ } rate and > 0)) return null;
                // A streamed WAV may say 0 or 0xFFFFFFFF: then the data runs to the end of the file.
                var dataBytes = size is 0 or uint.MaxValue || position + 8 + size > length ? length - position - 8 : size;
                return (double)dataBytes / rate;
            }
            position += 8 + size + (size & 1);   // chunks are padded to an even size
        }
        return null;
    }

    private static double? Mp3(byte[] head, long length)
    {
        var offset = 0;
        if (head.Length >= 10 && head.AsSpan(0, 3).SequenceEqual("ID3"u8))
            offset = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F));
        for (; offset + 4 <= head.Length; offset++)
        {
            if (head[offset] != 0xFF || (head[offset + 1] & 0xE6) != 0xE2) continue;   // sync, layer III
            var mpeg1 = (head[offset + 1] & 0x18) == 0x18;
            var mpeg25 = (head[offset + 1] & 0x18) == 0x00;
            var kbps = (mpeg1 ? Mpeg1Layer3Kbps : Mpeg2Layer3Kbps)[head[offset + 2] >> 4];
            var rate = Mpeg1Rates[(head[offset + 2] >> 2) & 3] / (mpeg1 ? 1 : mpeg25 ? 4 : 2);
            if (kbps == 0 || rate == 0) continue;
            var samplesPerFrame = mpeg1 ? 1152 : 576;
            // Two frames in a row, or it is not MP3: a stray 0xFFE in other data must not pass for a short file.
            var frameBytes = samplesPerFrame / 8 * kbps * 1000 / rate + ((head[offset + 2] >> 1) & 1);
            var next = offset + frameBytes;
            if (next + 2 > head.Length || head[next] != 0xFF || (head[next + 1] & 0xE6) != 0xE2) continue;
            // A Xing/Info header (VBR files) says how many frames there are: exact.
            var mono = (head[offset + 3] >> 6) == 3;
            var xing = offset + 4 + (mpeg1 ? (mono ? 17 : 32) : (mono ? 9 : 17));
            if (xing + 12 <= head.Length && (head.AsSpan(xing, 4).SequenceEqual("Xing"u8) || head.AsSpan(xing, 4).SequenceEqual("Info"u8))
                && (head[xing + 7] & 1) == 1)
                return (double)BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(xing + 8)) * samplesPerFrame / rate;
            return (length - offset) * 8.0 / (kbps * 1000);
        }
        return null;
    }
}
