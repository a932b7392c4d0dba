using System.Text;

// Fixed OpenAI wire-format answers: one chat.completion JSON, or ten chat.completion.chunk events,
// a usage chunk and [DONE]. Everything is prepared once; a request only parses "stream".
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
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

app.MapPost("/v1/chat/completions", async context =>
{
    using var reader = new StreamReader(context.Request.Body);
    var body = await reader.ReadToEndAsync();
    var stream = body.Contains("\"stream\":true", StringComparison.Ordinal);
    context.Response.ContentType = stream ? "text/event-stream" : "application/json";
    await context.Response.Body.WriteAsync(stream ? events : json);
});
app.Run();
