using System.Text;

using Microsoft.AspNetCore.Server.Kestrel.Core;

// Fixed OpenAI wire-format answers: one chat.completion JSON, or ten chat.completion.chunk events,
// a usage chunk and [DONE]. Everything is prepared once; a request only parses "stream". A prompt that
// says SLOW-STREAM gets the same events one second apart (bench/run.sh streams: many long, idle streams).
// PORT: HTTP/1.1 on 127.0.0.1; H2C_PORT (optional): HTTP/2 without TLS (prior knowledge), for a gateway
// that multiplexes its upstream calls over a few connections.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.ListenLocalhost(int.Parse(Environment.GetEnvironmentVariable("PORT") ?? "5000"));
    if (Environment.GetEnvironmentVariable("H2C_PORT") is { Length: > 0 } h2c)
        kestrel.ListenLocalhost(int.Parse(h2c), o => o.Protocols = HttpProtocols.Http2);
    // The slow-stream case holds 10,000 requests open at once.
    kestrel.Limits.MaxConcurrentConnections = null;
    kestrel.Limits.Http2.MaxStreamsPerConnection = 1000;
});
var app = builder.Build();

var json = Encoding.UTF8.GetBytes("""
{"id":"chatcmpl-bench","object":"chat.completion","created":1741570283,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0}}}
""".Trim());
var sse = new StringBuilder();
sse.Append("""data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1741570283,"model":"bench-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}""").Append("\n\n");
foreach (var word in "The quick brown fox jumps over the lazy dog today".Split(' '))
    sse.Append("data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" ")
       .Append(word).Append("\"},\"finish_reason\":null}],\"usage\":null}\n\n");
sse.Append("""data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1741570283,"model":"bench-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}""").Append("\n\n");
sse.Append("""data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1741570283,"model":"bench-model","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}""").Append("\n\n");
sse.Append("data: [DONE]\n\n");
var events = Encoding.UTF8.GetBytes(sse.ToString());
var eventList = sse.ToString().Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => Encoding.UTF8.GetBytes(e + "\n\n")).ToArray();

app.MapPost("/v1/chat/completions", async context =>
{
    using var reader = new StreamReader(context.Request.Body);
    var body = await reader.ReadToEndAsync();
    var stream = body.Contains("\"stream\":true", StringComparison.Ordinal);
    context.Response.ContentType = stream ? "text/event-stream" : "application/json";
    if (stream && body.Contains("SLOW-STREAM", StringComparison.Ordinal))
    {
        foreach (var e in eventList)
        {
            await context.Response.Body.WriteAsync(e, context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            await Task.Delay(1000, context.RequestAborted);
        }
        return;
    }
    await context.Response.Body.WriteAsync(stream ? events : json);
});
app.Run();
