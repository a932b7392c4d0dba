using System.Diagnostics;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The stream relay every generating endpoint shares (chat completions, Anthropic messages): read the upstream's
/// events, translate them as they arrive, flush, checkpoint usage for a dead instance's sweep, drain after a client
/// leaves, end at the idle deadline, the hard stop and shutdown, and decide what the stream costs however it ended.
/// </summary>
public sealed partial class StreamRelay(OpenStreams streams, IOptions<GatewayOptions> options, ILogger<StreamRelay> logger)
{
    private readonly GatewayOptions _options = options.Value;
    private static readonly StreamPipeReaderOptions UpstreamReading = new(bufferSize: 4 * 1024, minimumReadSize: 1024, useZeroByteReads: true);

    /// <summary>
    /// Relays a stream through <paramref name="translator"/> into <paramref name="writer"/> (which writes, directly or
    /// translated again, into the response); returns the usage to bill. Every way out (clean end, client gone, idle timeout,
    /// hard stop, malformed event, upstream error or disconnect) sets how the stream ended and goes
    /// through the one decision, <see cref="ChatStreamTranslator.BillableUsage"/>: the provider's usage
    /// or our count of what went out, whichever is right for that ending; null when nothing was produced. The relay owns
    /// <paramref name="translator"/> from here and disposes it when the stream ends (its pooled buffer goes back).
    /// </summary>
    public async Task<TokenUsage?> RelayAsync(HttpContext context, ChatCall call, RouteResult route, long started, OpenStream? checkpoint,
        ChatStreamTranslator translator, SseWriter writer)
    {
        using var owned = translator;
        var provider = route.Provider!;
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        GatewayResponses.SetServerTiming(response, started, route.UpstreamTime);
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        using var parser = new SseParser();
        // Not linked to the client: cancelling an upstream read aborts the upstream connection, and a client that
        // leaves starts a drain (below) rather than cutting the provider off. A departure shows at the next flush.
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(streams.MustEnd);
        var hardStop = Stopwatch.GetTimestamp() + (long)(_options.MaxStreamSeconds * (double)Stopwatch.Frequency);
        string? failure = null;
        try
        {
            await using var upstream = await route.Response!.Content.ReadAsStreamAsync(idle.Token);
            // Zero-byte reads: a stream waiting for its next event holds no buffer (a read buffer is rented only once
            // bytes have arrived), which is most of what 10,000 open streams would otherwise keep (bench/run.sh streams).
            var reader = PipeReader.Create(upstream, UpstreamReading);
            while (true)
            {
                idle.CancelAfter(provider.StreamIdleTimeout);
                if (await PumpAsync(reader, parser, translator, writer, idle.Token)) break;
                try
                {
                    await response.BodyWriter.FlushAsync(context.RequestAborted);
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
                {
                    LogClientAborted(call.Model.Id, provider.Name);
                    return await DrainAsync(reader, parser, translator, idle, provider.StreamIdleTimeout, checkpoint);
                }
                // Every few seconds, what this stream would cost if it ended now, for a dead instance's sweep (F7).
                if (checkpoint is { Due: true }) checkpoint.Record(translator.BillableUsage(endedCleanly: false));
                if (Stopwatch.GetTimestamp() > hardStop)
                {
                    failure = "The response exceeded the longest streaming time allowed.";
                    break;
                }
            }
            await reader.CompleteAsync();
            if (failure is null) translator.Complete(writer);
            if (failure is null && !translator.Finished) failure = "The upstream provider ended the stream before it was complete.";
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            LogClientAborted(call.Model.Id, provider.Name);
            return translator.BillableUsage(endedCleanly: false);   // disposing the route's response cancels the upstream request
        }
        catch (OperationCanceledException) when (streams.MustEnd.IsCancellationRequested)
        {
            failure = "The server is restarting, so this stream was ended early; what was sent is billed. Please retry.";
        }
        catch (OperationCanceledException)
        {
            failure = "The upstream provider stopped sending data.";
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or UpstreamProtocolException)
        {
            LogStreamBroke(provider.Name, call.Model.Id, ex.Message);
            failure = ex is UpstreamProtocolException ? "The upstream provider sent a malformed stream." : "The connection to the upstream provider broke.";
        }

        if (failure is not null) writer.WriteErrorAndDone(failure);
        try
        {
            await response.BodyWriter.FlushAsync(context.RequestAborted);
        }
        catch (OperationCanceledException) { }
        return translator.BillableUsage(endedCleanly: failure is null && !translator.Failed);
    }

    /// <summary>
    /// Reads what the upstream has sent and translates its events into <paramref name="writer"/>; true at the stream's end.
    /// Called once per read, and it nearly always waits: its state machine comes from a pool instead of being made per
    /// event (10,000 streams at an event a second made 1.8 MB/s of them, issue 16).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> PumpAsync(PipeReader reader, SseParser parser, ChatStreamTranslator translator, SseWriter writer, CancellationToken ct)
    {
        var read = await reader.ReadAsync(ct);
        var buffer = read.Buffer;
        parser.Parse(ref buffer, translator, writer);
        if (read.IsCompleted)
        {
            parser.Finish(buffer, translator, writer);
            reader.AdvanceTo(read.Buffer.End);
            return true;
        }
        reader.AdvanceTo(buffer.Start, buffer.End);
        return false;
    }

    /// <summary>
    /// The client left mid-stream (RELIABILITY F5): keep reading the upstream, sending nothing, for up to
    /// <see cref="GatewayOptions.StreamDrainSeconds"/>, so a stream that ends in that time is billed by the provider's own
    /// usage report (what it charges us for the whole generation) instead of our count of what had gone out. Drains are
    /// capped per instance (<see cref="GatewayOptions.MaxStreamDrains"/>) and end at shutdown; a drain cut short, or no
    /// drain place, bills our count so far, as any broken stream.
    /// </summary>
    private async Task<TokenUsage?> DrainAsync(PipeReader reader, SseParser parser, ChatStreamTranslator translator, CancellationTokenSource idle,
        TimeSpan idleTimeout, OpenStream? checkpoint)
    {
        if (!streams.TryStartDrain()) return translator.BillableUsage(endedCleanly: false);   // disposing the route's response cancels the upstream request
        var discard = PipeWriter.Create(Stream.Null);
        var writer = new SseWriter(discard);
        var until = Stopwatch.GetTimestamp() + (long)(_options.StreamDrainSeconds * (double)Stopwatch.Frequency);
        try
        {
            while (Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), until) is var left && left > TimeSpan.Zero)
            {
                idle.CancelAfter(left < idleTimeout ? left : idleTimeout);
                if (await PumpAsync(reader, parser, translator, writer, idle.Token))
                {
                    translator.Complete(writer);
                    return translator.BillableUsage(endedCleanly: translator.Finished && !translator.Failed);
                }
                await discard.FlushAsync(CancellationToken.None);   // lets the written bytes go
                if (checkpoint is { Due: true }) checkpoint.Record(translator.BillableUsage(endedCleanly: false));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException or UpstreamProtocolException)
        {
            // Shutdown, silence, the drain's time up, or a broken upstream: billed from our count below.
        }
        finally
        {
            streams.EndDrain();
            await discard.CompleteAsync();
        }
        return translator.BillableUsage(endedCleanly: false);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stream from {Provider} for {Model} broke: {Reason}")]
    private partial void LogStreamBroke(string provider, string model, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Client left the stream of {Model} from {Provider}")]
    private partial void LogClientAborted(string model, string provider);
}

/// <summary>
/// The billing rules of a generated answer, one place for every endpoint: the prompt's upper bound that a
/// reservation holds, what a client that left early owes, and how far a provider's usage report is believed.
/// </summary>
internal static class ChatBilling
{
    /// <summary>
    /// An upper bound of the prompt's input tokens: our count of its text with the tokenizer's margin
    /// (<see cref="ModelTokenizer.PromptUpperBound"/>), plus the fixed worst case per media part.
    /// </summary>
    internal static long PromptBound(ChatCall call) => call.Tokenizer.PromptUpperBound(call.PromptTokens) + call.MediaTokensBound;

    /// <summary>What a call the client left after the upstream took it costs at least: its prompt as we count it, estimated.</summary>
    internal static TokenUsage PromptOnly(ChatCall call) => new(call.PromptTokens, 0, 0, Estimated: true);

    /// <summary>
    /// The usage to bill for a whole answer (an OpenAI <c>chat.completion</c>), as
    /// <see cref="Billable(ChatCall, ChatCompletionResult)"/> decides it but without a DOM for the usual answer: a plausible report of
    /// at least a token per 6 bytes of answer is believed; anything else is decided on the parsed answer, as always.
    /// </summary>
    internal static TokenUsage Billable(ChatCall call, OpenAiCompletionSplice splice) =>
        Plausible(splice.Usage, call) is { } reported && reported.CompletionTokens * 6 >= splice.AnswerBytes
            ? reported
            : Billable(call, new ChatCompletionResult(OpenAiAdapter.ParseObject(splice.Body), splice.Usage));

    internal static TokenUsage Billable(ChatCall call, ChatCompletionResult result) =>
        Plausible(result.Usage, call) is { } reported ? Checked(call, reported, result.Response) : Estimate(call, result.Response);

    /// <summary>
    /// Provider usage is untrusted input (RELIABILITY L8): negative counts never get here (UsageJson
    /// drops them), and output far beyond the limit we sent is replaced by our own count.
    /// </summary>
    internal static TokenUsage? Plausible(TokenUsage? usage, ChatCall call) =>
        usage is { } u && u.CompletionTokens <= call.OutputBound * 10 + 16 ? u : null;

    /// <summary>When a provider reports no usable usage: our count of the prompt and of the answer's text and tool arguments. Flagged as estimated.</summary>
    internal static TokenUsage Estimate(ChatCall call, JsonObject completion) =>
        new(call.PromptTokens, AnswerText(call, completion, count: true), 0, Estimated: true);

    /// <summary>
    /// The same rule as a stream that ended cleanly (<see cref="ChatStreamTranslator.BillableUsage"/>): a
    /// report of at least a token per 6 bytes of answer is believed without counting; one under half our
    /// count of the answer is absurd and replaced by that count, flagged estimated.
    /// </summary>
    internal static TokenUsage Checked(ChatCall call, TokenUsage reported, JsonObject completion)
    {
        if (reported.CompletionTokens * 6 >= AnswerText(call, completion, count: false)) return reported;
        var counted = AnswerText(call, completion, count: true);
        return reported.CompletionTokens * 2 >= counted ? reported : reported with { CompletionTokens = counted, Estimated = true };
    }

    /// <summary>The tokens (or, without <paramref name="count"/>, the UTF-8 bytes) of the answer's text, refusals and tool calls (a legacy completion's text too).</summary>
    internal static long AnswerText(ChatCall call, JsonObject completion, bool count)
    {
        long total = 0;
        if (completion["choices"] is not JsonArray choices) return 0;
        foreach (var choice in choices)
        {
            total += Measure(choice?["text"]);   // a legacy text_completion's choice
            if (choice?["message"] is not JsonObject message) continue;
            total += Measure(message["content"]) + Measure(message["refusal"]);
            if (message["tool_calls"] is JsonArray calls)
                foreach (var toolCall in calls)
                    total += Measure(toolCall?["function"]?["name"]) + Measure(toolCall?["function"]?["arguments"]);
        }
        return total;

        long Measure(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text)
            ? count ? call.Tokenizer.Count(text) : System.Text.Encoding.UTF8.GetByteCount(text)
            : 0;
    }
}
