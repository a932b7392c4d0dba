using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Providers;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Byok;

/// <summary>
/// Bring your own key (issue 14): keys added on /keys/providers go upstream instead of the platform's, on chat and
/// messages, are billed the BYOK fee exactly, are refused clearly (or fall back when allowed), stay with their account,
/// and never show up again in a page, a log line or the database in clear.
/// </summary>
public sealed class ByokTests(ByokApp app) : IClassFixture<ByokApp>
{
    private const string Page = "/keys/providers";

    private sealed record User(Guid Id, WebSession Session, HttpClient Api);

    private async Task<User> UserAsync()
    {
        var (id, session) = await app.SignedInAsync("byok");
        await app.GrantAsync(id, 10_000_000);
        var api = app.CreateClient();
        api.DefaultRequestHeaders.Authorization = new("Bearer", await app.IssueKeyAsync(id));
        return new User(id, session, api);
    }

    private static async Task<HttpResponseMessage> AddKeyAsync(User user, string kind, string secret, string? label = null, string? baseUrl = null, bool fallback = false)
    {
        var fields = new Dictionary<string, string> { ["Input.Kind"] = kind, ["Input.Secret"] = secret, ["Input.Label"] = label ?? "", ["Input.BaseUrl"] = baseUrl ?? "" };
        if (fallback) fields["Input.FallbackToPlatform"] = "true";
        return await user.Session.SubmitAsync(Page, fields, $"{Page}?handler=Add");
    }

    private static Task<HttpResponseMessage> ChatAsync(HttpClient api, string model) =>
        api.PostAsJsonAsync("/api/v1/chat/completions", new { model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 50 });

    /// <summary>The BYOK fee of a call at $1/M tokens: the normal charge (1.8×) times 5 %, i.e. 900 basis points, rounded up once.</summary>
    private static long Fee(long tokens) => (tokens * 1_000_000 * 900 + 10_000_000_000 - 1) / 10_000_000_000;

    private static long Normal(long tokens) => (tokens * 1_000_000 * ByokApp.Margin + 10_000_000_000 - 1) / 10_000_000_000;

    private List<string> OpenAiKeysSeen() => [.. app.OpenAi.Requests.Where(r => r.PathAndQuery == "/v1/chat/completions")
        .Select(r => r.Headers.TryGetValue("Authorization", out var v) ? v["Bearer ".Length..] : "")];

    private async Task<(long Cost, long? ProviderCost, bool Byok, long Tokens)> LastUsageAsync(Guid userId)
    {
        await app.WaitForUsageAsync();
        var row = await app.Database.ScalarAsync<string>(
            $"select cost_micros || ',' || coalesce(provider_cost_micros::text, '') || ',' || byok || ',' || (prompt_tokens + completion_tokens) from usage_events where user_id = '{userId}' order by id desc limit 1");
        var parts = row!.Split(',');
        return (long.Parse(parts[0]), parts[1] == "" ? null : long.Parse(parts[1]), parts[2] == "true", long.Parse(parts[3]));
    }

    private async Task AssertLedgerEqualsBalanceAsync(Guid userId, long expectedBalance)
    {
        Assert.Equal(expectedBalance, await app.Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{userId}'"));
        Assert.Equal(expectedBalance, await app.Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'"));
    }

    private async Task AssertNowhereInClearAsync(params string[] secrets)
    {
        var logs = app.AllLogs();
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, logs);
            // Every text column of the tables a key could land in, and the sealed bytes themselves.
            Assert.Equal(0L, await app.Database.ScalarAsync<long>($"""
                select (select count(*) from user_provider_keys where position(convert_to('{secret}', 'UTF8') in secret) > 0
                          or label like '%{secret}%' or coalesce(base_url, '') like '%{secret}%' or coalesce(last_error, '') like '%{secret}%')
                     + (select count(*) from audit_log where coalesce(before_value, '') || coalesce(after_value, '') || coalesce(detail, '') like '%{secret}%')
                """));
        }
    }

    [Fact]
    public async Task A_chat_call_goes_upstream_with_the_users_openai_key_and_is_billed_exactly_the_byok_fee()
    {
        var user = await UserAsync();
        const string secret = "sk-user-openai-abcdef-7391";
        var added = await AddKeyAsync(user, "openai", secret, "my-openai");
        Assert.Equal(HttpStatusCode.Redirect, added.StatusCode);
        var page = await user.Session.TextAsync(Page);
        Assert.Contains("…7391", page);
        Assert.DoesNotContain("abcdef", page);
        Assert.Equal("byok-key.add", await app.Database.ScalarAsync<string>($"select action from audit_log where target like 'byok-key:%' and actor like 'byok-%' order by id desc limit 1"));

        app.OpenAi.PromptTokens = 1000;
        app.OpenAi.CompletionTokens = 500;
        var before = OpenAiKeysSeen().Count;
        using var response = await ChatAsync(user.Api, ByokApp.OpenAiModel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("true", response.Headers.GetValues("X-AiGate-Byok").Single());
        Assert.Equal(secret, OpenAiKeysSeen()[before]);
        var usage = await LastUsageAsync(user.Id);
        Assert.Equal(1500, usage.Tokens);
        Assert.True(usage.Byok);
        Assert.Equal(Fee(1500), usage.Cost);
        Assert.Equal(135, usage.Cost);   // 5 % of the normal 2,700 micro-USD
        Assert.Equal(0, usage.ProviderCost);
        var json = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal(0.000135m, json!["usage"]!["cost"]!.GetValue<decimal>());
        await AssertLedgerEqualsBalanceAsync(user.Id, 10_000_000 - 135);
        // /api/v1/usage counts it, and the dashboard's request list marks it.
        var usageApi = await user.Api.GetFromJsonAsync<JsonObject>("/api/v1/usage");
        Assert.Equal(1, usageApi!["total"]!["byok_requests"]!.GetValue<long>());
        Assert.Equal(1, usageApi["total"]!["requests"]!.GetValue<long>());
        await app.Services.GetRequiredService<AiGate.Web.Features.Usage.UsageRollup>().RunAsync(CancellationToken.None);
        var rolledUp = await user.Api.GetFromJsonAsync<JsonObject>("/api/v1/usage");
        Assert.Equal(1, rolledUp!["total"]!["byok_requests"]!.GetValue<long>());
        Assert.Contains("data-testid=\"byok-badge\"", await user.Session.TextAsync("/dashboard"));
        await AssertNowhereInClearAsync(secret);
    }

    [Fact]
    public async Task A_streamed_call_with_the_users_key_is_billed_the_fee()
    {
        var user = await UserAsync();
        const string secret = "sk-user-stream-openai-2468";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "openai", secret)).StatusCode);
        app.OpenAi.PromptTokens = 1000;
        app.OpenAi.CompletionTokens = 500;

        using var response = await user.Api.PostAsJsonAsync("/api/v1/chat/completions", new
        {
            model = ByokApp.OpenAiModel, stream = true, stream_options = new { include_usage = true },
            messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 50,
        });
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("[DONE]", body);
        Assert.Equal(secret, OpenAiKeysSeen()[^1]);
        var usage = await LastUsageAsync(user.Id);
        Assert.True(usage.Byok);
        Assert.Equal(Fee(1500), usage.Cost);
        await AssertLedgerEqualsBalanceAsync(user.Id, 10_000_000 - Fee(1500));
    }

    [Fact]
    public async Task Embeddings_go_upstream_with_the_users_key_and_are_billed_the_fee()
    {
        var user = await UserAsync();
        const string secret = "sk-user-embed-openai-9753";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "openai", secret)).StatusCode);
        app.OpenAi.PromptTokens = 1000;

        using var response = await user.Api.PostAsJsonAsync("/api/v1/embeddings", new { model = ByokApp.EmbeddingModel, input = new[] { "a", "b" } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = app.OpenAi.Requests.Last(r => r.PathAndQuery == "/v1/embeddings");
        Assert.Equal("Bearer " + secret, sent.Headers["Authorization"]);
        var usage = await LastUsageAsync(user.Id);
        Assert.True(usage.Byok);
        Assert.Equal(Fee(1000), usage.Cost);
        await AssertLedgerEqualsBalanceAsync(user.Id, 10_000_000 - Fee(1000));
    }

    [Fact]
    public async Task A_change_announced_by_another_instance_reaches_this_one_within_seconds()
    {
        var user = await UserAsync();
        const string secret = "sk-user-notice-openai-1357";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "openai", secret)).StatusCode);
        using (var first = await ChatAsync(user.Api, ByokApp.OpenAiModel)) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(secret, OpenAiKeysSeen()[^1]);   // the keys are now in this instance's memory

        // Another instance deletes the key and announces it, as its page does (the row gone, the notice on commit).
        await app.Database.ExecuteAsync($"delete from user_provider_keys where user_id = '{user.Id}'; select pg_notify('aigate_cache', 'byok:{user.Id:D}');");

        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            using (var response = await ChatAsync(user.Api, ByokApp.OpenAiModel)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            if (OpenAiKeysSeen()[^1] == ByokApp.PlatformOpenAiKey) break;
            Assert.True(DateTime.UtcNow < deadline, "this instance kept using the deleted key");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Another_account_never_uses_this_users_key_and_a_deleted_key_stops_being_used_at_once()
    {
        var owner = await UserAsync();
        const string secret = "sk-owner-only-openai-5150";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(owner, "openai", secret)).StatusCode);
        var other = await UserAsync();
        app.OpenAi.PromptTokens = 1000;
        app.OpenAi.CompletionTokens = 500;

        var before = OpenAiKeysSeen().Count;
        using (var response = await ChatAsync(other.Api, ByokApp.OpenAiModel)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(ByokApp.PlatformOpenAiKey, OpenAiKeysSeen()[before]);
        var usage = await LastUsageAsync(other.Id);
        Assert.False(usage.Byok);
        Assert.Equal(Normal(1500), usage.Cost);
        // Another user's key id cannot be tested, toggled or deleted from this account.
        var id = await app.Database.ScalarAsync<Guid>($"select id from user_provider_keys where user_id = '{owner.Id}'");
        foreach (var handler in new[] { "Delete", "Test", "Fallback" })
            Assert.Equal(HttpStatusCode.NotFound, (await other.Session.SubmitAsync(Page, new() { ["id"] = id.ToString(), ["fallback"] = "true" }, $"{Page}?handler={handler}")).StatusCode);

        using (var response = await ChatAsync(owner.Api, ByokApp.OpenAiModel)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(secret, OpenAiKeysSeen()[^1]);
        Assert.Equal(HttpStatusCode.Redirect, (await owner.Session.SubmitAsync(Page, new() { ["id"] = id.ToString() }, $"{Page}?handler=Delete")).StatusCode);
        using (var response = await ChatAsync(owner.Api, ByokApp.OpenAiModel)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(ByokApp.PlatformOpenAiKey, OpenAiKeysSeen()[^1]);
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from audit_log where action = 'byok-key.delete' and target = 'byok-key:{id}'"));
    }

    [Fact]
    public async Task A_refused_user_key_without_fallback_gets_a_clear_403_uses_no_platform_key_and_is_marked_on_the_page()
    {
        var user = await UserAsync();
        const string secret = "sk-user-revoked-openai-4242";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "openai", secret, "revoked")).StatusCode);
        app.OpenAi.RevokedKeys[secret] = 0;
        var before = OpenAiKeysSeen().Count;

        using var response = await ChatAsync(user.Api, ByokApp.OpenAiModel);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("byok_key_refused", error["code"]!.GetValue<string>());
        Assert.Contains("refused your own openai key \"revoked\" (ending in 4242) with HTTP 401", error["message"]!.GetValue<string>());
        Assert.DoesNotContain("user-revoked", error.ToJsonString());
        Assert.Equal(new[] { secret }, OpenAiKeysSeen()[before..]);
        // The platform's key is untouched (not disabled, no admin told); the user's key is not disabled either.
        Assert.Contains(app.Services.GetRequiredService<ProviderKeyRing>().Active("openai"), k => k.Last4 == "0000");
        var usage = await LastUsageAsync(user.Id);
        Assert.Equal(0, usage.Cost);
        await AssertLedgerEqualsBalanceAsync(user.Id, 10_000_000);
        await WaitUntilAsync(async () => (await user.Session.TextAsync(Page)).Contains("HTTP 401 from the provider"));
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from user_provider_keys where user_id = '{user.Id}'"));
        await AssertNowhereInClearAsync(secret);
    }

    [Fact]
    public async Task With_fallback_allowed_a_refused_user_key_moves_the_call_to_the_platform_key_at_the_normal_price()
    {
        var user = await UserAsync();
        const string secret = "sk-user-fallback-openai-8080";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "openai", secret, "fallback", fallback: true)).StatusCode);
        app.OpenAi.RevokedKeys[secret] = 0;
        app.OpenAi.PromptTokens = 1000;
        app.OpenAi.CompletionTokens = 500;
        var before = OpenAiKeysSeen().Count;

        using var response = await ChatAsync(user.Api, ByokApp.OpenAiModel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("X-AiGate-Byok"));
        Assert.Equal(new[] { secret, ByokApp.PlatformOpenAiKey }, OpenAiKeysSeen()[before..]);
        var usage = await LastUsageAsync(user.Id);
        Assert.False(usage.Byok);
        Assert.Equal(Normal(1500), usage.Cost);
        await AssertLedgerEqualsBalanceAsync(user.Id, 10_000_000 - Normal(1500));
    }

    [Fact]
    public async Task Messages_go_to_anthropic_with_the_users_key_and_are_billed_the_fee()
    {
        var user = await UserAsync();
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "anthropic", FakeAnthropic.ProviderKey, "claude")).StatusCode);
        var before = app.Anthropic.Requests.Count(r => r.PathAndQuery == "/v1/messages");

        using var response = await user.Api.PostAsJsonAsync("/api/v1/messages",
            new { model = ByokApp.AnthropicModel, max_tokens = 100, messages = new[] { new { role = "user", content = "hi" } } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = app.Anthropic.Requests.Where(r => r.PathAndQuery == "/v1/messages").Skip(before).Single();
        Assert.Equal(FakeAnthropic.ProviderKey, sent.Headers["x-api-key"]);
        var usage = await LastUsageAsync(user.Id);
        Assert.True(usage.Byok);
        // Anthropic's usage (TextMessage: 25 input + 10 cache writes + 100 cache reads, 15 output), every rate $1/M here, at the fee.
        Assert.Equal(150, usage.Tokens);
        Assert.Equal(Fee(150), usage.Cost);
        Assert.Equal(0, usage.ProviderCost);
        await AssertLedgerEqualsBalanceAsync(user.Id, 10_000_000 - usage.Cost);
        Assert.DoesNotContain(app.Violations, v => !v.StartsWith("x-api-key", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Gemini_refusing_the_users_key_with_400_API_KEY_INVALID_is_a_refused_key_and_so_is_a_platform_key()
    {
        var user = await UserAsync();
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "gemini", "AIza-user-wrong-gemini-6060", "gem")).StatusCode);

        using var response = await ChatAsync(user.Api, ByokApp.GeminiModel);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("byok_key_refused", (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        Assert.Contains("HTTP 400", (await response.Content.ReadAsStringAsync()));

        // A platform Gemini key answered 400 API_KEY_INVALID leaves the ring like a 401 would: the call does not pass Gemini's 400 on as the client's fault.
        var platformUser = await UserAsync();
        using var platform = await ChatAsync(platformUser.Api, ByokApp.BadGeminiModel);
        Assert.NotEqual(HttpStatusCode.BadRequest, platform.StatusCode);
        Assert.Empty(app.Services.GetRequiredService<ProviderKeyRing>().Active("gembad"));
    }

    [Fact]
    public async Task A_custom_endpoint_is_called_as_byok_label_model_with_the_users_key_and_billed_the_custom_fee()
    {
        var user = await UserAsync();
        const string secret = "sk-custom-endpoint-3131";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "custom", secret, "mine", app.Custom.BaseUrl.ToString())).StatusCode);
        app.Custom.PromptTokens = 1000;
        app.Custom.CompletionTokens = 500;

        using var response = await ChatAsync(user.Api, "byok/mine/some-org/model-x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = app.Custom.Requests.Single(r => r.PathAndQuery == "/v1/chat/completions");
        Assert.Equal("Bearer " + secret, sent.Headers["Authorization"]);
        Assert.Equal("some-org/model-x", JsonNode.Parse(sent.Body)!["model"]!.GetValue<string>());
        var usage = await LastUsageAsync(user.Id);
        Assert.True(usage.Byok);
        Assert.Equal(150, usage.Cost);   // 1,500 tokens at $0.10 per million
        await AssertLedgerEqualsBalanceAsync(user.Id, 10_000_000 - 150);

        // A name too long for a usage row is refused before anything is sent (it could not be billed).
        using var tooLong = await ChatAsync(user.Api, "byok/mine/" + new string('m', 119));
        Assert.Equal(HttpStatusCode.NotFound, tooLong.StatusCode);

        // Another account has no endpoint of that label.
        var other = await UserAsync();
        using var missing = await ChatAsync(other.Api, "byok/mine/some-org/model-x");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("model_not_found", (await missing.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        Assert.Single(app.Custom.Requests, r => r.PathAndQuery == "/v1/chat/completions");
        await AssertNowhereInClearAsync(secret);
    }

    [Theory]
    [InlineData("https://10.0.0.1/v1")]
    [InlineData("https://169.254.169.254/latest")]
    [InlineData("https://[::ffff:127.0.0.1]/v1")]
    [InlineData("https://2130706433/v1")]
    [InlineData("https://evil@127.0.0.1/v1")]
    [InlineData("http://api.example.com/v1")]
    public async Task A_custom_endpoint_on_an_internal_address_is_refused_and_the_key_is_not_echoed(string baseUrl)
    {
        var user = await UserAsync();
        using var refused = await AddKeyAsync(user, "custom", "sk-never-echoed-secret-9999", "bad", baseUrl);

        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        var page = await refused.Content.ReadAsStringAsync();
        Assert.Contains("alert-error", page);
        Assert.DoesNotContain("never-echoed", page);
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from user_provider_keys where user_id = '{user.Id}'"));
    }

    [Fact]
    public async Task The_test_button_reports_ok_or_the_refusal_without_the_key()
    {
        var user = await UserAsync();
        const string secret = "sk-user-testbutton-1212";
        Assert.Equal(HttpStatusCode.Redirect, (await AddKeyAsync(user, "openai", secret, "tested")).StatusCode);
        var id = await app.Database.ScalarAsync<Guid>($"select id from user_provider_keys where user_id = '{user.Id}'");

        Assert.Equal(HttpStatusCode.Redirect, (await user.Session.SubmitAsync(Page, new() { ["id"] = id.ToString() }, $"{Page}?handler=Test")).StatusCode);
        var ok = await user.Session.TextAsync(Page);
        Assert.Contains("OK: openai accepted the key", ok);
        Assert.Contains(app.OpenAi.Requests, r => r.PathAndQuery == "/v1/models" && r.Headers.GetValueOrDefault("Authorization") == "Bearer " + secret);

        app.OpenAi.RevokedKeys[secret] = 0;
        Assert.Equal(HttpStatusCode.Redirect, (await user.Session.SubmitAsync(Page, new() { ["id"] = id.ToString() }, $"{Page}?handler=Test")).StatusCode);
        var refused = await user.Session.TextAsync(Page);
        Assert.Contains("Refused: openai answered HTTP 401", refused);
        Assert.DoesNotContain("testbutton", refused);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not come true in time");
            await Task.Delay(100);
        }
    }
}
