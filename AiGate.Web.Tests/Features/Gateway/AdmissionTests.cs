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
    /// <summary>
    /// A body that sends the start of a JSON object, waits <paramref name="hold"/> (or until the test ends it) and
    /// stops there, truncated: a server that reads and parses the body before deciding answers 400 for it; one that
    /// decides first answers with its refusal. (The in-process test server hands the answer back only once the
    /// request body is complete, so the status, not the time, tells the two apart.)
    /// </summary>
    private sealed class TruncatedBody(TimeSpan hold, CancellationToken end) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync("{\"model\":\"echo/echo-1\",\"messages\":["u8.ToArray());
            await stream.FlushAsync();
            // JSON whitespace, 64 bytes every 100 ms: the body stays unfinished for the whole hold while arriving faster
            // than Kestrel's minimum body data rate (240 B/s after a 5 s grace), which would otherwise cut a long holder
            // off on a slow machine.
            var until = DateTime.UtcNow + hold;
            var spaces = new byte[64];
            Array.Fill(spaces, (byte)' ');
            try
            {
                while (DateTime.UtcNow < until && !end.IsCancellationRequested)
                {
                    await stream.WriteAsync(spaces, end);
                    await stream.FlushAsync(end);
                    await Task.Delay(100, end);
                }
            }
            catch (OperationCanceledException) { }
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

        using var response = await client.SendAsync(Post("/api/v1/chat/completions", new TruncatedBody(TimeSpan.FromMilliseconds(300), default)));

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);   // 400 (truncated JSON) when the body is parsed first
        Assert.Equal("rate_limit_exceeded", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        Assert.True(response.Headers.Contains("Retry-After"));
    }

    /// <summary>
    /// Against the built app (Kestrel, as deployed): the in-process test server hands a request to the app only
    /// once its body is complete, so calls whose bodies are still arriving cannot hold a place there.
    /// </summary>
    [Fact]
    public async Task An_account_over_its_concurrency_cap_is_refused_before_its_body_is_read_and_its_places_come_back()
    {
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 10_000_000);
        var key = await app.IssueKeyAsync(userId);
        await using var child = AppProcess.Start(new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing", ["ConnectionStrings__Default"] = app.Database.ConnectionString,
            ["Jobs__SchedulerEnabled"] = "false", ["Providers__echo__Kind"] = "echo",
            ["Billing__Plans__0__RequestsPerMinute"] = "100000", ["Billing__Plans__0__TokensPerMinute"] = "1000000000",
            ["Gateway__MaxConcurrentRequestsPerAccount"] = "2",
        });
        using var client = new HttpClient { BaseAddress = await child.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

        using var end = new CancellationTokenSource();
        Task<HttpResponseMessage> Hold() => client.SendAsync(Post("/api/v1/chat/completions", new TruncatedBody(TimeSpan.FromSeconds(30), end.Token)), end.Token);
        var open = new List<Task<HttpResponseMessage>> { Hold(), Hold() };

        // Both hold a place while the app waits for their bodies, once their headers have reached it (on a loaded
        // machine that takes a while): until then a probe is admitted and answered 400 for its truncated body, and
        // a holder that arrived while a probe held a place was refused, so it is sent again. A probe refused before
        // its body is read gets 429; were the cap decided after parsing, every probe would get 400.
        HttpResponseMessage refused;
        var admittedUntil = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await Task.Delay(500);
            Assert.True(DateTime.UtcNow < admittedUntil, "the two calls holding the account's places never both got in\n" + child.Log);
            for (var i = 0; i < open.Count; i++)
                if (open[i].IsCompleted)
                {
                    try { (await open[i]).Dispose(); } catch (HttpRequestException) { }
                    open[i] = Hold();
                }
            if (open.Any(o => o.IsCompleted)) continue;
            refused = await client.SendAsync(Post("/api/v1/chat/completions", new TruncatedBody(TimeSpan.FromMilliseconds(300), default)));
            if (refused.StatusCode == HttpStatusCode.TooManyRequests || DateTime.UtcNow > admittedUntil.AddSeconds(-1)) break;
            refused.Dispose();
        }
        using var _ = refused;
        Assert.True(refused.StatusCode == HttpStatusCode.TooManyRequests, child.Log);
        var error = (await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("concurrency_limit_exceeded", error["code"]!.GetValue<string>());
        Assert.Contains("2 at once", error["message"]!.GetValue<string>(), StringComparison.Ordinal);

        await end.CancelAsync();
        foreach (var call in open)
        {
            try { (await call).Dispose(); } catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException) { }
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        HttpStatusCode status;
        do
        {
            status = (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode;   // 503 until the new instance's first lease
            if (status == HttpStatusCode.OK) break;
            await Task.Delay(200);
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
