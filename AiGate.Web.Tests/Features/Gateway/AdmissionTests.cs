using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Keys;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>An app where an account may have 2 calls in flight and an embeddings body may be 64 KB.</summary>
public sealed class AdmissionApp : AiGateApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Gateway:MaxConcurrentRequestsPerAccount"] = "2",
        ["Gateway:MaxEmbeddingsRequestBytes"] = "65536",
    };
}

/// <summary>
/// Issue 11 #5: rate limits and the per-account concurrency cap are decided before the body is read, so a
/// refused client costs no read and no parse; each endpoint has its own body limit.
/// </summary>
public sealed class AdmissionTests(AdmissionApp app) : IClassFixture<AdmissionApp>
{
    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A body that sends its first bytes and then nothing for 15 s or until the test ends it: a server that reads
    /// the body before deciding answers only after that (with a 400 for the truncated JSON).
    /// </summary>
    private sealed class EndlessBody(CancellationToken end) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync("{\"model\":\"echo/echo-1\",\"messages\":["u8.ToArray());
            await stream.FlushAsync();
            try { await Task.Delay(TimeSpan.FromSeconds(15), end); } catch (OperationCanceledException) { }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }

    private static HttpRequestMessage Post(string path, HttpContent content)
    {
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
    }

    private static object Chat() => new { model = "echo/echo-1", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 5 };

    [Fact]
    public async Task A_key_over_its_request_rate_is_refused_before_its_body_is_read()
    {
        var (client, _, _) = await app.CreateApiClientAsync(new KeyLimits(RequestsPerMinute: 1));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);

        using var end = new CancellationTokenSource();
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var response = await client.SendAsync(Post("/api/v1/chat/completions", new EndlessBody(end.Token)), HttpCompletionOption.ResponseHeadersRead);
        var answeredIn = started.Elapsed;
        await end.CancelAsync();

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.True(answeredIn < Quick, $"answered after {answeredIn}: the body was read first");
        Assert.Equal("rate_limit_exceeded", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        Assert.True(response.Headers.Contains("Retry-After"));
    }

    [Fact]
    public async Task An_account_over_its_concurrency_cap_is_refused_before_its_body_is_read_and_its_places_come_back()
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        using var end = new CancellationTokenSource();
        var open = Enumerable.Range(0, 2)
            .Select(_ => client.SendAsync(Post("/api/v1/chat/completions", new EndlessBody(end.Token)), HttpCompletionOption.ResponseHeadersRead, end.Token))
            .ToList();
        await Task.Delay(300);   // both hold a place while the app waits for their bodies

        var started = System.Diagnostics.Stopwatch.StartNew();
        using var refused = await client.SendAsync(Post("/api/v1/chat/completions", new EndlessBody(end.Token)), HttpCompletionOption.ResponseHeadersRead);
        Assert.True(started.Elapsed < Quick, $"answered after {started.Elapsed}: the body was read first");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var error = (await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("concurrency_limit_exceeded", error["code"]!.GetValue<string>());
        Assert.Contains("2 at once", error["message"]!.GetValue<string>(), StringComparison.Ordinal);

        await end.CancelAsync();
        foreach (var call in open)
        {
            try { (await call).Dispose(); } catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException) { }
        }
        var deadline = DateTime.UtcNow.AddSeconds(5);
        HttpStatusCode status;
        do
        {
            status = (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode;
            if (status == HttpStatusCode.OK) break;
            await Task.Delay(100);
        } while (DateTime.UtcNow < deadline);
        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task Embeddings_have_their_own_body_limit_with_or_without_a_content_length()
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        var big = "{\"model\":\"echo/echo-embed\",\"input\":\"" + new string('a', 100_000) + "\"}";

        using var sized = await client.PostAsync("/api/v1/embeddings", new StringContent(big, Encoding.UTF8, "application/json"));
        using var chunked = await client.SendAsync(Post("/api/v1/embeddings", new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)))));
        using var chat = await client.PostAsync("/api/v1/chat/completions", new StringContent(
            "{\"model\":\"echo/echo-1\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('a', 100_000) + "\"}]}",
            Encoding.UTF8, "application/json"));

        foreach (var response in new[] { sized, chunked })
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            Assert.Equal("request_too_large", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        }
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);   // the chat limit is the larger one
    }
}
