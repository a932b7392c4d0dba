using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// OpenAI's Realtime API on loopback: <c>GET /v1/realtime?model=…</c> upgraded to a WebSocket, speaking its event
/// shapes. On connect it sends <c>session.created</c>; <c>session.update</c> gets <c>session.updated</c>;
/// <c>response.create</c> gets <c>response.created</c>, a <c>response.output_text.delta</c>, a
/// <c>response.output_audio.delta</c> and <c>response.done</c> whose <c>response.usage</c> is <see cref="Usage"/>
/// (unless <see cref="Mode"/> holds the response back); <c>response.cancel</c> of a held response gets
/// <c>response.done</c> with status <c>cancelled</c> and <see cref="Usage"/>. Binary frames come back as they went.
/// Every session records the headers of its handshake and the frames it received.
/// </summary>
public sealed class FakeOpenAiRealtime : IAsyncDisposable
{
    public enum Behaviour
    {
        Ok,
        /// <summary>Starts each response (created and deltas) and finishes it only on <c>response.cancel</c>.</summary>
        FinishOnCancel,
        /// <summary>Starts each response and never finishes it, cancel or not.</summary>
        NeverFinish,
    }

    private FakeUpstream _server = null!;

    public Behaviour Mode { get; set; } = Behaviour.Ok;

    /// <summary>The <c>response.usage</c> of every <c>response.done</c>.</summary>
    public JsonObject Usage { get; set; } = DefaultUsage();

    /// <summary>The audio of each response's <c>response.output_audio.delta</c> (PCM16 bytes).</summary>
    public int AudioBytes { get; set; } = 4800;

    public ConcurrentQueue<Session> Sessions { get; } = new();
    public Uri BaseUrl => new(_server.BaseUrl, "/v1");

    public static JsonObject DefaultUsage() => new()
    {
        ["total_tokens"] = 1_700, ["input_tokens"] = 1_200, ["output_tokens"] = 500,
        ["input_token_details"] = new JsonObject
        {
            ["text_tokens"] = 200, ["audio_tokens"] = 1_000, ["image_tokens"] = 0, ["cached_tokens"] = 300,
            ["cached_tokens_details"] = new JsonObject { ["text_tokens"] = 100, ["audio_tokens"] = 200, ["image_tokens"] = 0 },
        },
        ["output_token_details"] = new JsonObject { ["text_tokens"] = 100, ["audio_tokens"] = 400 },
    };

    public static async Task<FakeOpenAiRealtime> StartAsync()
    {
        var fake = new FakeOpenAiRealtime();
        fake._server = await FakeUpstream.StartAsync(app =>
        {
            app.UseWebSockets();
            app.Map("/v1/realtime", fake.HandleAsync);
        });
        return fake;
    }

    public void Reset()
    {
        Mode = Behaviour.Ok;
        Usage = DefaultUsage();
        Sessions.Clear();
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        var session = new Session(
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            context.Request.Query["model"].ToString());
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        session.Socket = socket;
        Sessions.Enqueue(session);
        var held = new List<string>();
        var sequence = 0;
        try
        {
            await SendAsync(socket, new JsonObject
            {
                ["type"] = "session.created", ["event_id"] = "event_0",
                ["session"] = new JsonObject { ["type"] = "realtime", ["object"] = "realtime.session", ["id"] = "sess_fake", ["model"] = session.Model },
            });
            var buffer = new byte[64 * 1024];
            while (true)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        session.ClientClosed = true;
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                        return;
                    }
                    message.Write(buffer, 0, result.Count);
                } while (!result.EndOfMessage);
                var bytes = message.ToArray();
                session.Frames.Enqueue((result.MessageType, bytes));
                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    await socket.SendAsync(bytes, WebSocketMessageType.Binary, true, CancellationToken.None);
                    continue;
                }
                var ev = JsonNode.Parse(bytes)!.AsObject();
                switch (ev["type"]!.GetValue<string>())
                {
                    case "session.update":
                        await SendAsync(socket, new JsonObject { ["type"] = "session.updated", ["event_id"] = $"event_u{++sequence}", ["session"] = ev["session"]!.DeepClone() });
                        break;
                    case "response.create":
                        var id = $"resp_{++sequence}";
                        await StartResponseAsync(socket, id);
                        if (Mode == Behaviour.Ok) await DoneAsync(socket, id, "completed");
                        else held.Add(id);
                        break;
                    case "response.cancel":
                        session.CancelReceived = true;
                        if (Mode == Behaviour.FinishOnCancel)
                        {
                            foreach (var heldId in held) await DoneAsync(socket, heldId, "cancelled");
                            held.Clear();
                        }
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            session.ClientClosed = true;
        }
    }

    private async Task StartResponseAsync(WebSocket socket, string id)
    {
        await SendAsync(socket, new JsonObject
        {
            ["type"] = "response.created", ["event_id"] = $"event_c_{id}",
            ["response"] = new JsonObject { ["object"] = "realtime.response", ["id"] = id, ["status"] = "in_progress", ["output"] = new JsonArray(), ["usage"] = null },
        });
        await SendAsync(socket, new JsonObject
        {
            ["type"] = "response.output_text.delta", ["event_id"] = $"event_t_{id}", ["response_id"] = id, ["item_id"] = $"item_{id}",
            ["output_index"] = 0, ["content_index"] = 0, ["delta"] = "Hello there, friend",
        });
        await SendAsync(socket, new JsonObject
        {
            ["type"] = "response.output_audio.delta", ["event_id"] = $"event_a_{id}", ["response_id"] = id, ["item_id"] = $"item_{id}",
            ["output_index"] = 0, ["content_index"] = 1, ["delta"] = Convert.ToBase64String(new byte[AudioBytes]),
        });
    }

    private Task DoneAsync(WebSocket socket, string id, string status) => SendAsync(socket, new JsonObject
    {
        ["type"] = "response.done", ["event_id"] = $"event_d_{id}",
        ["response"] = new JsonObject
        {
            ["object"] = "realtime.response", ["id"] = id, ["status"] = status,
            ["status_details"] = status == "cancelled" ? new JsonObject { ["type"] = "cancelled", ["reason"] = "client_cancelled" } : null,
            ["output"] = new JsonArray(), ["usage"] = Usage.DeepClone(),
        },
    });

    private static Task SendAsync(WebSocket socket, JsonObject ev) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(ev.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    public sealed class Session(IReadOnlyDictionary<string, string> headers, string model)
    {
        public IReadOnlyDictionary<string, string> Headers { get; } = headers;
        public string Model { get; } = model;
        public ConcurrentQueue<(WebSocketMessageType Type, byte[] Bytes)> Frames { get; } = new();
        public volatile bool CancelReceived;
        public volatile bool ClientClosed;

        internal WebSocket? Socket;

        /// <summary>The provider ends the session, as OpenAI does at its own time limit: an <c>error</c> event, then a close.</summary>
        public async Task CloseFromProviderAsync(WebSocketCloseStatus status, string reason)
        {
            await SendAsync(Socket!, new JsonObject
            {
                ["type"] = "error", ["event_id"] = "event_closing",
                ["error"] = new JsonObject { ["type"] = "invalid_request_error", ["code"] = "session_expired", ["message"] = reason, ["param"] = null, ["event_id"] = null },
            });
            await Socket!.CloseOutputAsync(status, reason, CancellationToken.None);
        }

        public IEnumerable<string> TextEvents => Frames.Where(f => f.Type == WebSocketMessageType.Text).Select(f => Encoding.UTF8.GetString(f.Bytes));
    }
}
