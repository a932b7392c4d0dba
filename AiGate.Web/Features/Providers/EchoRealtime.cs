using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// The <c>echo</c> provider's Realtime WebSocket, in process (no network, no key): two WebSockets over a pair of
/// in-memory pipes, the server end answering OpenAI's Realtime events. It sends <c>session.created</c> on connect,
/// <c>session.updated</c> for <c>session.update</c>, remembers the text of <c>conversation.item.create</c>, and answers
/// <c>response.create</c> with <c>response.created</c>, one <c>response.output_text.delta</c> ("Echo: " and the last
/// text; an <c>response.output_audio.delta</c> of silence too when the session asked for audio), and
/// <c>response.done</c> with usage (tokens: ceil(UTF-8 bytes / 4), audio: 20 tokens a second). Binary frames come back as they went.
/// </summary>
public static class EchoRealtime
{
    /// <summary>The client end of a new echo session; the server end runs until either side closes.</summary>
    public static WebSocket Connect(string model)
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        var client = WebSocket.CreateFromStream(new DuplexPipeStream(toClient.Reader, toServer.Writer), isServer: false, subProtocol: null,
            keepAliveInterval: Timeout.InfiniteTimeSpan);
        var server = WebSocket.CreateFromStream(new DuplexPipeStream(toServer.Reader, toClient.Writer), isServer: true, subProtocol: null,
            keepAliveInterval: Timeout.InfiniteTimeSpan);
        _ = Task.Run(() => ServeAsync(server, model));
        return client;
    }

    private static async Task ServeAsync(WebSocket socket, string model)
    {
        var session = new JsonObject { ["id"] = "sess_echo", ["object"] = "realtime.session", ["model"] = model, ["output_modalities"] = new JsonArray("text") };
        var lastText = "";
        var sequence = 0;
        var buffer = new byte[64 * 1024];
        try
        {
            await SendAsync(socket, new JsonObject { ["type"] = "session.created", ["event_id"] = "event_echo0", ["session"] = session.DeepClone() });
            while (true)
            {
                using var message = new MemoryStream();
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                        return;
                    }
                    message.Write(buffer, 0, result.Count);
                } while (!result.EndOfMessage);
                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    await socket.SendAsync(message.ToArray(), WebSocketMessageType.Binary, true, CancellationToken.None);
                    continue;
                }
                var ev = TryParse(message.ToArray());
                var type = ev?["type"]?.GetValueKind() == JsonValueKind.String ? ev["type"]!.GetValue<string>() : null;
                switch (type)
                {
                    case "session.update":
                        if (ev!["session"] is JsonObject update)
                            foreach (var (name, value) in update) session[name] = value?.DeepClone();
                        await SendAsync(socket, new JsonObject { ["type"] = "session.updated", ["event_id"] = Id("event", ++sequence), ["session"] = session.DeepClone() });
                        break;
                    case "conversation.item.create":
                        lastText = TextOf(ev!["item"]) ?? lastText;
                        await SendAsync(socket, new JsonObject
                        {
                            ["type"] = "conversation.item.created", ["event_id"] = Id("event", ++sequence), ["item"] = ev["item"]?.DeepClone(),
                        });
                        break;
                    case "response.create":
                        await RespondAsync(socket, session, lastText, ++sequence);
                        break;
                    case "response.cancel":
                        break;   // each echo response is done before the next event is read: nothing is running
                    default:
                        await SendAsync(socket, new JsonObject
                        {
                            ["type"] = "error", ["event_id"] = Id("event", ++sequence),
                            ["error"] = new JsonObject
                            {
                                ["type"] = "invalid_request_error", ["code"] = "unknown_event",
                                ["message"] = $"The echo provider does not answer the event type '{type}'.", ["param"] = null, ["event_id"] = ev?["event_id"]?.DeepClone(),
                            },
                        });
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or InvalidOperationException)
        {
            // The client end went away: the session is over.
        }
        finally
        {
            socket.Dispose();
        }
    }

    private static async Task RespondAsync(WebSocket socket, JsonObject session, string lastText, int sequence)
    {
        var responseId = Id("resp", sequence);
        var reply = "Echo: " + lastText;
        var audio = session["output_modalities"] is JsonArray modalities && modalities.Any(m => m?.GetValue<string>() == "audio")
            || session["modalities"] is JsonArray beta && beta.Any(m => m?.GetValue<string>() == "audio");
        await SendAsync(socket, new JsonObject
        {
            ["type"] = "response.created", ["event_id"] = Id("event_c", sequence),
            ["response"] = new JsonObject { ["id"] = responseId, ["object"] = "realtime.response", ["status"] = "in_progress", ["output"] = new JsonArray() },
        });
        await SendAsync(socket, new JsonObject
        {
            ["type"] = "response.output_text.delta", ["event_id"] = Id("event_t", sequence), ["response_id"] = responseId,
            ["item_id"] = Id("item", sequence), ["output_index"] = 0, ["content_index"] = 0, ["delta"] = reply,
        });
        // A tenth of a second of PCM16 silence at 24 kHz: 2 tokens at 20 a second.
        long audioTokens = 0;
        if (audio)
        {
            await SendAsync(socket, new JsonObject
            {
                ["type"] = "response.output_audio.delta", ["event_id"] = Id("event_a", sequence), ["response_id"] = responseId,
                ["item_id"] = Id("item", sequence), ["output_index"] = 0, ["content_index"] = 0, ["delta"] = Convert.ToBase64String(new byte[4800]),
            });
            audioTokens = 2;
        }
        var input = Tokens(lastText);
        var textOut = Tokens(reply);
        await SendAsync(socket, new JsonObject
        {
            ["type"] = "response.done", ["event_id"] = Id("event_d", sequence),
            ["response"] = new JsonObject
            {
                ["id"] = responseId, ["object"] = "realtime.response", ["status"] = "completed", ["output"] = new JsonArray(),
                ["usage"] = new JsonObject
                {
                    ["total_tokens"] = input + textOut + audioTokens, ["input_tokens"] = input, ["output_tokens"] = textOut + audioTokens,
                    ["input_token_details"] = new JsonObject { ["cached_tokens"] = 0, ["text_tokens"] = input, ["audio_tokens"] = 0 },
                    ["output_token_details"] = new JsonObject { ["text_tokens"] = textOut, ["audio_tokens"] = audioTokens },
                },
            },
        });
    }

    private static string? TextOf(JsonNode? item)
    {
        if (item?["content"] is not JsonArray content) return null;
        var text = new StringBuilder();
        foreach (var part in content)
            if (part?["text"] is JsonValue value && value.TryGetValue<string>(out var s)) text.Append(s);
        return text.ToString();
    }

    private static JsonObject? TryParse(byte[] bytes)
    {
        try
        {
            return JsonNode.Parse(bytes) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static long Tokens(string text) => (Encoding.UTF8.GetByteCount(text) + 3) / 4;

    private static string Id(string prefix, int sequence) => $"{prefix}_echo{sequence}";

    private static Task SendAsync(WebSocket socket, JsonObject ev) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(ev.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);

    /// <summary>One end of the in-memory connection: reads what the other end wrote, writes what it will read.</summary>
    private sealed class DuplexPipeStream(PipeReader reader, PipeWriter writer) : Stream
    {
        private readonly Stream _in = reader.AsStream();
        private readonly Stream _out = writer.AsStream();

        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _in.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _in.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _in.ReadAsync(buffer, offset, count, cancellationToken);
        public override void Write(byte[] buffer, int offset, int count) => _out.Write(buffer, offset, count);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _out.WriteAsync(buffer, cancellationToken);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _out.WriteAsync(buffer, offset, count, cancellationToken);
        public override void Flush() => _out.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => _out.FlushAsync(cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Completing both pipes ends the other side's reads (end of stream) and writes.
                _in.Dispose();
                _out.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
