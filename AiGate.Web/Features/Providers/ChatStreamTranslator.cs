using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// Turns one upstream stream's server-sent events into OpenAI <c>chat.completion.chunk</c> events,
/// as they arrive. It also keeps what billing needs: the provider's usage when it reports one, and
/// our own token count of the text that went out (<see cref="CountText(JsonElement)"/>), so that
/// <see cref="BillableUsage"/> can decide what a stream costs however it ended.
/// </summary>
public abstract class ChatStreamTranslator(ChatCall call) : IDisposable
{
    /// <summary>
    /// Forwarded text is kept (unescaped, in a pooled buffer that grows from 256 to 64 K chars) and
    /// counted only when the bill needs it: counting costs about 0.1 µs a token (o200k and cl100k,
    /// <c>bench/run.sh tokens</c> on this machine), so a stream that ends cleanly with a believable usage report is never
    /// counted. Past 64 K chars the buffer is counted and reused, which bounds memory; a block boundary
    /// moves the count by a token at most (a split word), far below the 10 % the bill may be off by.
    /// </summary>
    private const int FirstBlockChars = 256, MaxBlockChars = 64 * 1024;
    private char[]? _text;
    private int _textLength;
    private long _countedTokens;

    protected ChatCall Call { get; } = call;

    /// <summary>The provider's own usage, once an event carried it.</summary>
    public TokenUsage? Usage { get; protected set; }

    /// <summary>The upstream said the response is complete (OpenAI's [DONE], Anthropic's message_stop…).</summary>
    public bool Finished { get; protected set; }

    /// <summary>The upstream ended the stream with an error event (the error and [DONE] are written; <see cref="Finished"/> is set too).</summary>
    public bool Failed { get; protected set; }

    /// <summary>UTF-8 bytes (as sent, escaped) of generated text and tool arguments forwarded so far.</summary>
    public long CompletionBytes { get; private set; }

    /// <summary>
    /// Thinking tokens the provider reported as part of <see cref="Usage"/>'s output whose text never
    /// reaches us (Gemini's <c>thoughtsTokenCount</c>): added to our count of the text, since the
    /// provider bills them and our count cannot see them.
    /// </summary>
    protected long UnseenReasoningTokens { get; set; }

    /// <summary>One upstream event (its <c>event:</c> name, possibly empty, and its joined <c>data:</c>).</summary>
    public abstract void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output);

    /// <summary>The upstream closed the stream; write whatever must still reach the client (usage chunk, [DONE]).</summary>
    public virtual void Complete(SseWriter output)
    {
    }

    /// <summary>
    /// What the stream costs, the one decision for every way a stream ends (RELIABILITY F3, F5).
    /// Ended cleanly: the provider's usage, unless its output is under half our count of what went out
    /// (an absurd report; half leaves room for our tokenizer being only an approximation of the
    /// provider's). Ended any other way (client gone, idle timeout, hard stop, malformed event, upstream
    /// error or disconnect, shutdown): the provider's usage so far is partial (Anthropic's message_start
    /// says 1 output token, Gemini reports output only at the end), so the output billed is the larger
    /// of it and our count. Our count wins → flagged estimated. No usage and nothing produced → null.
    /// Upstream error text is never counted: only model output goes through <see cref="CountText(JsonElement)"/>.
    /// </summary>
    public TokenUsage? BillableUsage(bool endedCleanly)
    {
        var reported = Plausible(Usage);
        if (reported is { } r && Believable(r, endedCleanly)) return r;
        var produced = CountedOutputTokens() + UnseenReasoningTokens;
        if (reported is { } partial)
        {
            var enough = endedCleanly ? partial.CompletionTokens * 2 >= produced : partial.CompletionTokens >= produced;
            return enough ? partial : partial with { CompletionTokens = produced, Estimated = true };
        }
        if (produced == 0 && CompletionBytes == 0) return null;
        return new TokenUsage(Call.PromptTokens, produced, 0, Estimated: true);
    }

    /// <summary>
    /// True when the report needs no count of ours to be believed: a token is at least one byte, so a
    /// report of at least as many tokens as bytes went out cannot be under our count; and at a clean
    /// end, one of at least a token per 6 bytes is an ordinary tokenizer (text averages 3–5 bytes a
    /// token), not an absurd report.
    /// </summary>
    private bool Believable(TokenUsage reported, bool endedCleanly)
    {
        var visible = reported.CompletionTokens - UnseenReasoningTokens;
        return visible >= CompletionBytes || (endedCleanly && visible * 6 >= CompletionBytes);
    }

    /// <summary>Provider usage is untrusted input (RELIABILITY L8): output far beyond the limit we sent is not believed.</summary>
    private TokenUsage? Plausible(TokenUsage? usage) =>
        usage is { } u && u.CompletionTokens <= (long)Call.MaxOutputTokens * 10 + 16 ? u : null;

    /// <summary>Our token count of everything passed to <see cref="CountText(JsonElement)"/> so far.</summary>
    public long CountedOutputTokens()
    {
        FlushText();
        return _countedTokens;
    }

    /// <summary>Counts a JSON string element the model produced (text, tool arguments, thinking).</summary>
    protected void CountText(JsonElement text)
    {
        if (text.ValueKind == JsonValueKind.String) CountJsonString(JsonMarshal.GetRawUtf8Value(text));
    }

    /// <summary>Counts a JSON string token, quotes included, as it appears in the upstream's bytes: unescaped into the block, no string made.</summary>
    protected void CountJsonString(ReadOnlySpan<byte> quoted)
    {
        if (quoted.Length <= 2) return;
        CompletionBytes += quoted.Length - 2;
        var reader = new Utf8JsonReader(quoted);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.String) return;
            var most = reader.ValueSpan.Length;   // one char at most per UTF-8 byte; escapes only shrink
            if (most > MaxBlockChars)
            {
                var large = ArrayPool<char>.Shared.Rent(most);
                var written = reader.CopyString(large);
                _countedTokens += Call.Tokenizer.Count(large.AsSpan(0, written));
                ArrayPool<char>.Shared.Return(large);
                return;
            }
            Reserve(most);
            _textLength += reader.CopyString(_text.AsSpan(_textLength));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
        {
            throw new UpstreamProtocolException("The upstream sent text that is not valid JSON or UTF-8.");
        }
    }

    /// <summary>Counts text that is already a .NET string (rare: tool arguments Gemini sends as an object).</summary>
    protected void CountText(string text)
    {
        CompletionBytes += System.Text.Encoding.UTF8.GetByteCount(text);
        _countedTokens += Call.Tokenizer.Count(text);
    }

    /// <summary>Room for <paramref name="chars"/> more: the buffer doubles up to its cap, then its text is counted and it starts over.</summary>
    private void Reserve(int chars)
    {
        if (_text is null)
        {
            _text = ArrayPool<char>.Shared.Rent(Math.Max(FirstBlockChars, chars));
            return;
        }
        if (_textLength + chars <= _text.Length) return;
        if (_textLength + chars > MaxBlockChars)
        {
            FlushText();
            if (chars <= _text.Length) return;
        }
        var larger = ArrayPool<char>.Shared.Rent(Math.Min(MaxBlockChars, Math.Max(_text.Length * 2, _textLength + chars)));
        _text.AsSpan(0, _textLength).CopyTo(larger);
        ArrayPool<char>.Shared.Return(_text);
        _text = larger;
    }

    private void FlushText()
    {
        if (_textLength == 0 || _text is null) return;
        _countedTokens += Call.Tokenizer.Count(_text.AsSpan(0, _textLength));
        _textLength = 0;
    }

    public void Dispose()
    {
        if (_text is not null) ArrayPool<char>.Shared.Return(_text);
        _text = null;
        _textLength = 0;
        GC.SuppressFinalize(this);
    }
}
