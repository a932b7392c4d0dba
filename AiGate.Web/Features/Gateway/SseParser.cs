using System.Buffers;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// An incremental parser for server-sent events (the WHATWG event-stream format): lines ending in
/// LF or CRLF, <c>event:</c> and <c>data:</c> fields, multi-line data joined with LF, a blank line
/// ends an event, <c>:</c> starts a comment. It consumes whole lines from the pipe's buffer, leaves a
/// partial line for the next read, and hands each complete event to the translator as spans.
/// </summary>
public sealed class SseParser(int maxEventBytes = 1 << 20)
{
    private readonly ArrayBufferWriter<byte> _data = new(4096);
    private readonly ArrayBufferWriter<byte> _eventName = new(32);
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
                if (_hasData) _data.Write("\n"u8);
                _data.Write(value);
                _hasData = true;
                if (_data.WrittenCount > maxEventBytes) throw new UpstreamProtocolException("An upstream event exceeded the size limit.");
            }
            else if (field.SequenceEqual("event"u8))
            {
                _eventName.ResetWrittenCount();
                _eventName.Write(value);
            }
        }
        buffer = buffer.Slice(reader.Position);
        if (buffer.Length > maxEventBytes) throw new UpstreamProtocolException("An upstream line exceeded the size limit.");
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
        if (_hasData) translator.OnEvent(_eventName.WrittenSpan, _data.WrittenSpan, output);
        _data.ResetWrittenCount();
        _eventName.ResetWrittenCount();
        _hasData = false;
    }
}
