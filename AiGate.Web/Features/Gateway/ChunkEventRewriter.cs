using System.Buffers;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// A buffer writer that the chat relay writes OpenAI <c>chat.completion.chunk</c> events into, handing each complete
/// event (its bytes up to, not including, the blank line that ends it) to <see cref="OnEvent"/> as soon as it is whole:
/// the base of the endpoints that answer another event format from the same relay (Messages, Responses). A partial
/// event waits in the buffer for the rest.
/// </summary>
internal abstract class ChunkEventRewriter : IBufferWriter<byte>
{
    private readonly ArrayBufferWriter<byte> _pending = new(4096);

    public Memory<byte> GetMemory(int sizeHint = 0) => _pending.GetMemory(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => _pending.GetSpan(sizeHint);

    public void Advance(int count)
    {
        _pending.Advance(count);
        var written = _pending.WrittenSpan;
        var consumed = 0;
        int end;
        while ((end = written[consumed..].IndexOf("\n\n"u8)) >= 0)
        {
            OnEvent(written.Slice(consumed, end));
            consumed += end + 2;
        }
        if (consumed == 0) return;
        if (consumed == written.Length)
        {
            _pending.ResetWrittenCount();   // the usual case: every SseWriter call ends with a whole event
            return;
        }
        var rest = written[consumed..].ToArray();
        _pending.ResetWrittenCount();
        _pending.Write(rest);
    }

    /// <summary>One whole event, without the blank line that ended it.</summary>
    protected abstract void OnEvent(ReadOnlySpan<byte> sse);
}
