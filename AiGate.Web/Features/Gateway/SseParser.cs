using System.Buffers;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// An incremental parser for server-sent events (the WHATWG event-stream format): lines ending in
/// LF or CRLF, <c>event:</c> and <c>data:</c> fields, multi-line data joined with LF, a blank line
/// ends an event, <c>:</c> starts a comment. It consumes whole lines from the pipe's buffer, leaves a
/// partial line for the next read, and hands each complete event to the translator as spans. Its buffers are
/// rented from the shared pool when an event arrives and go back once no event is half read, so a stream waiting
/// for its next event holds none (one parser per open stream: issue 16).
/// </summary>
public sealed class SseParser(int maxEventBytes = 1 << 20) : IDisposable
{
    private byte[] _data = [];
    private int _dataLength;
    private byte[] _eventName = [];
    private int _eventNameLength;
    private bool _hasData;

    public void Parse(ref ReadOnlySequence<byte> buffer, ChatStreamTranslator translator, SseWriter output)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryReadTo(out ReadOnlySequence<byte> lineSequence, (byte)'\n'))
        {
            var line = lineSequence.IsSingleSegment ? lineSequence.FirstSpan : lineSequence.ToArray();
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            if (line.IsEmpty)
            {
                Dispatch(translator, output);
                continue;
            }
            if (line[0] == (byte)':') continue;
            var colon = line.IndexOf((byte)':');
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? [] : line[(colon + 1)..];
            if (value.Length > 0 && value[0] == (byte)' ') value = value[1..];
            if (field.SequenceEqual("data"u8))
            {
                if (_hasData) Append(ref _data, ref _dataLength, "\n"u8);
                Append(ref _data, ref _dataLength, value);
                _hasData = true;
                if (_dataLength > maxEventBytes) throw new UpstreamProtocolException("An upstream event exceeded the size limit.");
            }
            else if (field.SequenceEqual("event"u8))
            {
                _eventNameLength = 0;
                Append(ref _eventName, ref _eventNameLength, value);
            }
        }
        buffer = buffer.Slice(reader.Position);
        if (buffer.Length > maxEventBytes) throw new UpstreamProtocolException("An upstream line exceeded the size limit.");
        if (!_hasData && _eventNameLength == 0) Dispose();
    }

    /// <summary>The stream ended: an event not followed by a blank line is still delivered.</summary>
    public void Finish(ReadOnlySequence<byte> rest, ChatStreamTranslator translator, SseWriter output)
    {
        if (!rest.IsEmpty)
        {
            var withNewline = new byte[rest.Length + 1];
            rest.CopyTo(withNewline);
            withNewline[^1] = (byte)'\n';
            var sequence = new ReadOnlySequence<byte>(withNewline);
            Parse(ref sequence, translator, output);
        }
        Dispatch(translator, output);
    }

    private void Dispatch(ChatStreamTranslator translator, SseWriter output)
    {
        if (_hasData) translator.OnEvent(_eventName.AsSpan(0, _eventNameLength), _data.AsSpan(0, _dataLength), output);
        _dataLength = 0;
        _eventNameLength = 0;
        _hasData = false;
    }

    private static void Append(ref byte[] buffer, ref int length, ReadOnlySpan<byte> bytes)
    {
        if (length + bytes.Length > buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(Math.Max(buffer.Length * 2, 256), length + bytes.Length));
            buffer.AsSpan(0, length).CopyTo(larger);
            if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
            buffer = larger;
        }
        bytes.CopyTo(buffer.AsSpan(length));
        length += bytes.Length;
    }

    /// <summary>True while an event is half read (its buffers are rented); false between events.</summary>
    internal bool HoldsBuffers => _data.Length > 0 || _eventName.Length > 0;

    public void Dispose()
    {
        // Idempotent, and also called between events: the arrays go back once, and are rented again by the next event.
        if (_data.Length > 0) ArrayPool<byte>.Shared.Return(_data);
        if (_eventName.Length > 0) ArrayPool<byte>.Shared.Return(_eventName);
        _data = [];
        _eventName = [];
    }
}
