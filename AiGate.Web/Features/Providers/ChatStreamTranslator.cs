using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// Turns one upstream stream's server-sent events into OpenAI <c>chat.completion.chunk</c> events,
/// as they arrive. It also keeps what billing needs: the provider's usage when it reports one, and
/// how much text went out (for an estimate when the stream ends without usage).
/// </summary>
public abstract class ChatStreamTranslator(ChatCall call)
{
    protected ChatCall Call { get; } = call;

    /// <summary>The provider's own usage, once an event carried it.</summary>
    public TokenUsage? Usage { get; protected set; }

    /// <summary>The upstream said the response is complete (OpenAI's [DONE], Anthropic's message_stop…).</summary>
    public bool Finished { get; protected set; }

    /// <summary>UTF-8 bytes of generated text and tool arguments forwarded so far.</summary>
    public long CompletionBytes { get; protected set; }

    /// <summary>One upstream event (its <c>event:</c> name, possibly empty, and its joined <c>data:</c>).</summary>
    public abstract void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output);

    /// <summary>The upstream closed the stream; write whatever must still reach the client (usage chunk, [DONE]).</summary>
    public virtual void Complete(SseWriter output)
    {
    }
}
