using System.Net;

// UPSTREAM: the upstream's base address, e.g. http://127.0.0.1:5001 (requests keep their path).
// UPSTREAM_HTTP2=1: call it over HTTP/2 without TLS (h2c), as the gateway does in `bench/run.sh streams`.
// ZERO_BYTE_READS=1: wait for the upstream's next bytes holding no buffer (a buffer is rented once bytes are there), as
// the gateway's stream relay does: the floor for many open, mostly idle streams.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
var upstream = new Uri(Environment.GetEnvironmentVariable("UPSTREAM") ?? throw new InvalidOperationException("UPSTREAM is not set"));
var http2 = Environment.GetEnvironmentVariable("UPSTREAM_HTTP2") == "1";
var zeroByteReads = Environment.GetEnvironmentVariable("ZERO_BYTE_READS") == "1";
var http = new HttpMessageInvoker(new SocketsHttpHandler
{
    PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    AutomaticDecompression = DecompressionMethods.None,
    AllowAutoRedirect = false,
    UseCookies = false,
    EnableMultipleHttp2Connections = true,
});

app.Run(async context =>
{
    using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), new Uri(upstream, context.Request.Path + context.Request.QueryString))
    {
        Content = new StreamContent(context.Request.Body),
    };
    if (http2) (request.Version, request.VersionPolicy) = (HttpVersion.Version20, HttpVersionPolicy.RequestVersionExact);
    if (context.Request.ContentType is { } type) request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
    if (context.Request.Headers.Authorization.ToString() is { Length: > 0 } auth) request.Headers.TryAddWithoutValidation("Authorization", auth);
    using var response = await http.SendAsync(request, context.RequestAborted);
    context.Response.StatusCode = (int)response.StatusCode;
    if (response.Content.Headers.ContentType is { } contentType) context.Response.ContentType = contentType.ToString();
    await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
    // Flush each read: a stream's events reach the client as they come, as the gateway's relay does.
    if (!zeroByteReads)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return;
    }
    while (true)
    {
        _ = await body.ReadAsync(Memory<byte>.Empty, context.RequestAborted);   // returns once bytes are there (or at the end)
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(4 * 1024);
        try
        {
            var read = await body.ReadAsync(buffer, context.RequestAborted);
            if (read == 0) break;
            await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }
});
app.Run();
