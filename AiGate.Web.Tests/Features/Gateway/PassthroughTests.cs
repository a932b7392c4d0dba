using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>The app with an OpenAI, an Anthropic and a Gemini provider, each pointing at its fake, and a small request cap.</summary>
public sealed class PassthroughApp : AiGateApp
{
    public const string OpenAiKey = "sk-openai-provider-key";
    public const int MaxRequestBytes = 64 * 1024;
    public ConcurrentQueue<string> Violations { get; } = new();
    public FakeOpenAi OpenAi { get; private set; } = null!;
    public FakeUpstream Anthropic { get; private set; } = null!;
    public FakeUpstream Gemini { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        OpenAi = await FakeOpenAi.StartAsync();
        Anthropic = await FakeAnthropic.StartAsync(Violations);
        Gemini = await FakeGemini.StartAsync(Violations);
        await base.InitializeAsync();
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:openai:Kind"] = "openai",
        ["Providers:openai:BaseUrl"] = OpenAi.BaseUrl.ToString(),
        ["Providers:openai:ApiKey"] = OpenAiKey,
        ["Providers:anthropic:Kind"] = "anthropic",
        ["Providers:anthropic:BaseUrl"] = Anthropic.BaseUrl.ToString(),
        ["Providers:anthropic:ApiKey"] = FakeAnthropic.ProviderKey,
        ["Providers:gemini:Kind"] = "gemini",
        ["Providers:gemini:BaseUrl"] = Gemini.BaseUrl.ToString(),
        ["Providers:gemini:ApiKey"] = FakeGemini.ProviderKey,
        ["Gateway:MaxRequestBytes"] = MaxRequestBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await OpenAi.DisposeAsync();
        await Anthropic.DisposeAsync();
        await Gemini.DisposeAsync();
    }
}

/// <summary>
/// <c>/api/v1/passthrough/{provider}/{**path}</c> over HTTP against the three providers' fakes: the
/// gateway key never goes upstream and each provider gets its own key its own way, the call is billed
/// from the provider's usage fields at the catalogue's price, and what cannot be priced or is not a plain
/// path under the provider's base never leaves the gateway.
/// </summary>
public sealed class PassthroughTests(PassthroughApp app) : IClassFixture<PassthroughApp>
{
    private const string OpenAiChat = """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":50}""";
    private const string AnthropicMessage = """{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hello"}]}""";
    private const string GeminiContent = """{"contents":[{"role":"user","parts":[{"text":"hello"}]}],"generationConfig":{"maxOutputTokens":100}}""";

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private async Task<ModelPricing> PricingAsync(string model) =>
        (await app.Services.GetRequiredService<ModelCatalog>().FindAsync(model, CancellationToken.None))!.Pricing!.Value;

    /// <summary>What the user's usage entries in the ledger took (a positive number), once the writer has drained.</summary>
    /// <summary>
    /// Waits (up to 10 s) for the call's usage row: the endpoint settles after YARP returns, so on a busy machine the
    /// record may not even be queued when the test looks (a fixed pause was not always enough).
    /// </summary>
    private async Task UsageRowAsync(Guid userId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
    }

    private async Task<long> ChargedAsync(Guid userId)
    {
        await app.WaitForUsageAsync();
        var usage = await app.Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}' and kind = 'usage'");
        var balance = await app.Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{userId}'");
        var ledger = await app.Database.ScalarAsync<long>($"select sum(amount_micros)::bigint from ledger_entries where user_id = '{userId}'");
        Assert.Equal(ledger, balance);   // every change of balance is a ledger entry
        Assert.Equal(0, app.Services.GetRequiredService<CreditLeases>().InFlight(userId));   // no reservation left held
        return -usage;
    }

    private static void AssertNeverSent(FakeUpstream.RecordedRequest request, string userKey)
    {
        Assert.DoesNotContain(request.Headers.Values, v => v.Contains(userKey, StringComparison.Ordinal));
        Assert.DoesNotContain(userKey, request.PathAndQuery, StringComparison.Ordinal);
        Assert.DoesNotContain(userKey, request.Body, StringComparison.Ordinal);
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{response.StatusCode}: {text}");
        var error = JsonNode.Parse(text)!["error"]!.AsObject();
        Assert.Equal(code, error["code"]?.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["message"]?.GetValue<string>()));
        Assert.NotNull(error["type"]);
        Assert.True(error.ContainsKey("param"));
    }

    [Fact]
    public async Task A_call_without_a_gateway_key_is_refused_with_the_401_envelope_and_nothing_goes_upstream()
    {
        app.OpenAi.Reset();
        using var client = app.CreateClient();

        using var response = await client.PostAsync("/api/v1/passthrough/openai/chat/completions", Json(OpenAiChat));

        await AssertErrorAsync(response, HttpStatusCode.Unauthorized, "invalid_api_key");
        Assert.Empty(app.OpenAi.Requests);
    }

    [Fact]
    public async Task OpenAi_gets_its_own_bearer_key_never_the_users_and_the_call_is_billed_from_its_usage()
    {
        app.OpenAi.Reset();
        var (client, key, userId) = await app.CreateApiClientAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/passthrough/openai/chat/completions?key=" + key) { Content = Json(OpenAiChat) };
        // Every place an SDK puts a key, and a cookie: none may reach the provider.
        request.Headers.TryAddWithoutValidation("x-api-key", key);
        request.Headers.TryAddWithoutValidation("x-goog-api-key", key);
        request.Headers.TryAddWithoutValidation("api-key", key);
        request.Headers.TryAddWithoutValidation("Cookie", "session=" + key);

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("chat.completion", answer["object"]!.GetValue<string>());   // the provider's own answer, untranslated
        Assert.Equal(11, answer["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal("openai", response.Headers.GetValues("X-AiGate-Provider").Single());
        Assert.True(response.Headers.Contains("x-ratelimit-remaining-requests"), "AiGate's rate-limit headers survive the provider's");
        Assert.True(response.Headers.Contains("X-Request-Id"));
        var upstream = Assert.Single(app.OpenAi.Requests);
        Assert.Equal("/v1/chat/completions", upstream.PathAndQuery);
        Assert.Equal("Bearer " + PassthroughApp.OpenAiKey, upstream.Headers["Authorization"]);
        Assert.False(upstream.Headers.ContainsKey("x-api-key"));
        Assert.False(upstream.Headers.ContainsKey("x-goog-api-key"));
        Assert.False(upstream.Headers.ContainsKey("Cookie"));
        AssertNeverSent(upstream, key);
        var price = (await PricingAsync("openai/gpt-4o-mini")).CostMicros(new TokenUsage(11, 7));
        Assert.True(price > 0);
        Assert.Equal(price, await ChargedAsync(userId));
    }

    [Fact]
    public async Task An_OpenAi_stream_asks_for_usage_and_is_billed_from_its_usage_chunk()
    {
        app.OpenAi.Reset();
        var (client, key, userId) = await app.CreateApiClientAsync();

        using var response = await client.PostAsync("/api/v1/passthrough/openai/chat/completions",
            Json("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":50,"stream":true}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await response.Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", events, StringComparison.Ordinal);
        var upstream = Assert.Single(app.OpenAi.Requests);
        Assert.True(JsonNode.Parse(upstream.Body)!["stream_options"]!["include_usage"]!.GetValue<bool>());
        AssertNeverSent(upstream, key);
        Assert.Equal((await PricingAsync("openai/gpt-4o-mini")).CostMicros(new TokenUsage(11, 7)), await ChargedAsync(userId));
    }

    [Fact]
    public async Task Anthropic_gets_x_api_key_and_the_version_and_the_call_is_billed_from_its_usage()
    {
        var (client, key, userId) = await app.CreateApiClientAsync();
        var before = app.Anthropic.Requests.Count;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/passthrough/anthropic/v1/messages") { Content = Json(AnthropicMessage) };
        request.Headers.TryAddWithoutValidation("anthropic-version", "2023-06-01");
        request.Headers.TryAddWithoutValidation("x-api-key", key);

        using var response = await client.SendAsync(request);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal("message", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["type"]!.GetValue<string>());
        Assert.True(app.Violations.IsEmpty, string.Join("; ", app.Violations));   // x-api-key is the provider's, no Authorization, a version
        var upstream = app.Anthropic.Requests.Skip(before).Single();
        Assert.Equal("/v1/messages", upstream.PathAndQuery);
        Assert.Equal(FakeAnthropic.ProviderKey, upstream.Headers["x-api-key"]);
        Assert.Equal("2023-06-01", upstream.Headers["anthropic-version"]);
        AssertNeverSent(upstream, key);
        // input 25 + cache write 10 + cache read 100, of which 100 cached; output 15.
        Assert.Equal((await PricingAsync("anthropic/claude-sonnet-4-5")).CostMicros(new TokenUsage(135, 15, 100)), await ChargedAsync(userId));
    }

    [Fact]
    public async Task Gemini_gets_x_goog_api_key_and_the_call_is_billed_from_its_usage_metadata()
    {
        var (client, key, userId) = await app.CreateApiClientAsync();
        var before = app.Gemini.Requests.Count;

        using var response = await client.PostAsync("/api/v1/passthrough/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=" + key, Json(GeminiContent));

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["usageMetadata"]);
        Assert.True(app.Violations.IsEmpty, string.Join("; ", app.Violations));
        var upstream = app.Gemini.Requests.Skip(before).Single();
        Assert.Equal("/v1beta/models/gemini-2.5-flash:generateContent", upstream.PathAndQuery);
        Assert.Equal(FakeGemini.ProviderKey, upstream.Headers["x-goog-api-key"]);
        Assert.False(upstream.Headers.ContainsKey("Authorization"));
        AssertNeverSent(upstream, key);
        // prompt 40 (16 cached), output 5 + 30 thoughts.
        Assert.Equal((await PricingAsync("google/gemini-2.5-flash")).CostMicros(new TokenUsage(40, 35, 16)), await ChargedAsync(userId));
    }

    [Theory]
    [InlineData("POST", "openai/files", """{"purpose":"batch"}""", HttpStatusCode.BadRequest, "endpoint_not_priced")]
    [InlineData("POST", "openai/batches", """{"input_file_id":"file-abc"}""", HttpStatusCode.BadRequest, "endpoint_not_priced")]
    [InlineData("GET", "openai/models", null, HttpStatusCode.BadRequest, "endpoint_not_priced")]
    [InlineData("POST", "anthropic/v1/messages/batches", AnthropicMessage, HttpStatusCode.BadRequest, "endpoint_not_priced")]
    [InlineData("POST", "gemini/v1beta/models/gemini-2.5-flash:countTokens", GeminiContent, HttpStatusCode.BadRequest, "endpoint_not_priced")]
    [InlineData("POST", "openai/chat/completions", """{"model":"gpt-not-in-the-catalogue","messages":[]}""", HttpStatusCode.NotFound, "model_not_found")]
    [InlineData("POST", "gemini/v1beta/models/gemini-0-unknown:generateContent", GeminiContent, HttpStatusCode.NotFound, "model_not_found")]
    [InlineData("POST", "anthropic/v1/messages", """{"model":"claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}""", HttpStatusCode.BadRequest, "stream_not_supported")]
    [InlineData("POST", "openai/responses", """{"model":"gpt-4o-mini","input":"hi","tools":[{"type":"web_search_preview"}]}""", HttpStatusCode.BadRequest, "feature_not_priced")]
    [InlineData("POST", "openai/responses", """{"model":"gpt-4o-mini","input":"hi","background":true}""", HttpStatusCode.BadRequest, "feature_not_priced")]
    [InlineData("POST", "openai/chat/completions", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"web_search_options":{}}""", HttpStatusCode.BadRequest, "feature_not_priced")]
    [InlineData("POST", "anthropic/v1/messages", """{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}]}""", HttpStatusCode.BadRequest, "feature_not_priced")]
    [InlineData("POST", "gemini/v1beta/models/gemini-2.5-flash:generateContent", """{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"google_search":{}}]}""", HttpStatusCode.BadRequest, "feature_not_priced")]
    [InlineData("POST", "openai/chat/completions", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"service_tier":"priority"}""", HttpStatusCode.BadRequest, "feature_not_priced")]
    [InlineData("POST", "nosuchprovider/chat/completions", OpenAiChat, HttpStatusCode.NotFound, "provider_not_found")]
    [InlineData("POST", "echo/chat/completions", OpenAiChat, HttpStatusCode.NotFound, "provider_not_found")]
    public async Task What_cannot_be_priced_is_refused_before_anything_goes_upstream(string method, string path, string? body, HttpStatusCode status, string code)
    {
        var (client, _, userId) = await app.CreateApiClientAsync();
        var before = app.OpenAi.Requests.Count + app.Anthropic.Requests.Count + app.Gemini.Requests.Count;
        using var request = new HttpRequestMessage(new HttpMethod(method), "/api/v1/passthrough/" + path) { Content = body is null ? null : Json(body) };

        using var response = await client.SendAsync(request);

        await AssertErrorAsync(response, status, code);
        Assert.Equal(before, app.OpenAi.Requests.Count + app.Anthropic.Requests.Count + app.Gemini.Requests.Count);
        Assert.Equal(0, await ChargedAsync(userId));
    }

    [Theory]
    [InlineData("/api/v1/passthrough/openai/%2e%2e/%2e%2e/admin", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/%2E%2E/chat/completions", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/chat%2Fcompletions", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/chat/completions%2F..%2F..%2Fadmin", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/../../chat/completions", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/./chat/completions", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai//chat/completions", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/chat\\..\\completions", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/https://evil.example/v1/chat/completions", "invalid_path")]
    [InlineData("/api/v1/passthrough/openai/%68ttp:%2F%2Fevil.example/chat/completions", "invalid_path")]
    [InlineData("/api/v1/passthrough/gemini/v1beta/models/..:generateContent", "endpoint_not_priced")]
    [InlineData("/api/v1/passthrough/gemini/v1beta/models/gemini-2.5-flash%2F..%2F..%2Fv1%2Ffiles:generateContent", "invalid_path")]
    public async Task Paths_that_escape_the_providers_base_are_refused_before_anything_goes_upstream(string path, string code)
    {
        var (_, key, _) = await app.CreateApiClientAsync();
        var before = app.OpenAi.Requests.Count + app.Gemini.Requests.Count;
        var body = Encoding.UTF8.GetBytes(path.Contains("gemini", StringComparison.Ordinal) ? GeminiContent : OpenAiChat);

        // The request target exactly as written (an HttpClient would resolve the dot segments before sending), with
        // the path decoded as the server decodes it (%2e becomes '.', %2F stays encoded).
        var context = await app.Server.SendAsync(c =>
        {
            c.Request.Method = "POST";
            c.Request.Path = PathString.FromUriComponent(path);
            c.Features.Get<IHttpRequestFeature>()!.RawTarget = path;
            c.Request.Headers.Authorization = "Bearer " + key;
            c.Request.ContentType = "application/json";
            c.Request.ContentLength = body.Length;
            c.Request.Body = new MemoryStream(body);
        });

        var text = await new StreamReader(context.Response.Body).ReadToEndAsync();
        Assert.True(context.Response.StatusCode == 400, $"{path}: {context.Response.StatusCode} {text}");
        Assert.Equal(code, JsonNode.Parse(text)!["error"]!["code"]!.GetValue<string>());
        Assert.Equal(before, app.OpenAi.Requests.Count + app.Gemini.Requests.Count);
    }

    [Theory]
    [InlineData(FakeOpenAi.Behaviour.Fail400, HttpStatusCode.BadRequest)]
    [InlineData(FakeOpenAi.Behaviour.Fail500, HttpStatusCode.InternalServerError)]
    [InlineData(FakeOpenAi.Behaviour.Fail429, HttpStatusCode.TooManyRequests)]
    public async Task An_upstream_error_is_passed_through_with_its_status_and_costs_nothing(FakeOpenAi.Behaviour mode, HttpStatusCode status)
    {
        app.OpenAi.Reset();
        app.OpenAi.Mode = mode;
        var (client, _, userId) = await app.CreateApiClientAsync();
        try
        {
            using var response = await client.PostAsync("/api/v1/passthrough/openai/chat/completions", Json(OpenAiChat));

            Assert.Equal(status, response.StatusCode);
            var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;   // the provider's own body
            Assert.NotNull(error["message"]);
            Assert.Single(app.OpenAi.Requests);   // a pass-through goes to the provider it names, once
            Assert.Equal(0, await ChargedAsync(userId));
        }
        finally
        {
            app.OpenAi.Reset();
        }
    }

    [Fact]
    public async Task A_client_that_leaves_while_the_provider_generates_pays_the_prompts_estimate_once()
    {
        app.OpenAi.Reset();
        app.OpenAi.JsonDelay = TimeSpan.FromSeconds(3);
        var (client, _, userId) = await app.CreateApiClientAsync();
        try
        {
            using var leave = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                client.PostAsync("/api/v1/passthrough/openai/chat/completions", Json(OpenAiChat), leave.Token));

            // The upstream had the whole request: it is told to stop, and the prompt (a token per 4 bytes, estimated) is billed.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (app.OpenAi.Aborted == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.Equal(1, app.OpenAi.Aborted);
            await UsageRowAsync(userId);   // the endpoint settles after YARP returns
            var expected = (await PricingAsync("openai/gpt-4o-mini")).CostMicros(new TokenUsage(Encoding.UTF8.GetByteCount(OpenAiChat) / 4 + 1, 0));
            Assert.Equal(expected, await ChargedAsync(userId));
            Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
        }
        finally
        {
            app.OpenAi.Reset();
        }
    }

    [Fact]
    public async Task A_client_that_leaves_a_stream_pays_the_estimate_of_what_was_relayed_once()
    {
        app.OpenAi.Reset();
        app.OpenAi.Mode = FakeOpenAi.Behaviour.SlowStream;   // a word every 200 ms
        var (client, _, userId) = await app.CreateApiClientAsync();
        try
        {
            using (var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/passthrough/openai/chat/completions")
                   { Content = Json("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":50,"stream":true}""") })
            using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                Assert.StartsWith("data: ", await reader.ReadLineAsync());
            }   // the client leaves after the first event, before the usage chunk

            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (app.OpenAi.Aborted == 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.Equal(1, app.OpenAi.Aborted);   // the upstream was told to stop
            await UsageRowAsync(userId);
            var pricing = await PricingAsync("openai/gpt-4o-mini");
            var promptOnly = pricing.CostMicros(new TokenUsage(Encoding.UTF8.GetByteCount("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":50,"stream":true}""") / 4 + 1, 0));
            var charged = await ChargedAsync(userId);
            Assert.InRange(charged, promptOnly, promptOnly + pricing.CostMicros(new TokenUsage(0, 50)));
            Assert.Equal(charged, await app.Database.ScalarAsync<long>($"select cost_micros from usage_events where user_id = '{userId}'"));
            // Billed as estimated: the events relayed (the role chunk at least), never more than the reserved limit.
            Assert.True(await app.Database.ScalarAsync<bool>($"select estimated from usage_events where user_id = '{userId}'"));
            Assert.InRange(await app.Database.ScalarAsync<long>($"select completion_tokens from usage_events where user_id = '{userId}'"), 1, 50);
        }
        finally
        {
            app.OpenAi.Reset();
        }
    }

    [Fact]
    public async Task A_body_over_the_limit_is_refused_with_413_before_anything_goes_upstream()
    {
        app.OpenAi.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync();
        var big = JsonSerializer.Serialize(new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = new string('a', PassthroughApp.MaxRequestBytes) } } });

        using var response = await client.PostAsync("/api/v1/passthrough/openai/chat/completions", Json(big));

        await AssertErrorAsync(response, HttpStatusCode.RequestEntityTooLarge, "request_too_large");
        Assert.Empty(app.OpenAi.Requests);
        Assert.Equal(0, await ChargedAsync(userId));
    }
}
