using System.Net;

// UPSTREAM: the upstream's base address, e.g. http://127.0.0.1:5001 (requests keep their path).
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();
var upstream = new Uri(Environment.GetEnvironmentVariable("UPSTREAM") ?? throw new InvalidOperationException("UPSTREAM is not set"));
var http = new HttpMessageInvoker(new SocketsHttpHandler
{
    PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    AutomaticDecompression = DecompressionMethods.None,
    AllowAutoRedirect = false,
    UseCookies = false,
});

app.Run(async context =>
{
    using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), new Uri(upstream, context.Request.Path + context.Request.QueryString))
    {
        Content = new StreamContent(context.Request.Body),
    };
    if (context.Request.ContentType is { } type) request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
    if (context.Request.Headers.Authorization.ToString() is { Length: > 0 } auth) request.Headers.TryAddWithoutValidation("Authorization", auth);
    using var response = await http.SendAsync(request, context.RequestAborted);
    context.Response.StatusCode = (int)response.StatusCode;
    if (response.Content.Headers.ContentType is { } contentType) context.Response.ContentType = contentType.ToString();
    await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
    var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
    try
    {
        int read;
        // Flush each read: a stream's events reach the client as they come, as the gateway's relay does.
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
});
app.Run();
