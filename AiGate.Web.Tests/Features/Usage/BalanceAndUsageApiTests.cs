using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Keys;
using AiGate.Web.Tests.Features.Credits;

namespace AiGate.Web.Tests.Features.Usage;

/// <summary>
/// <c>GET /api/v1/balance</c> and <c>GET /api/v1/usage</c> through HTTP: real metered calls (1 µ$ per
/// token, so 11 + 7 tokens cost 18 µ$), plus usage rows written straight to the table where a test
/// needs other days, models or failures. Whatever the query, only the key owner's usage counts.
/// </summary>
public sealed class BalanceAndUsageApiTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    private static readonly object Chat = new Dictionary<string, object?>
    {
        ["model"] = CreditsApp.Model, ["messages"] = new[] { new { role = "user", content = "hi" } }, ["max_tokens"] = 50,
    };

    private static string Today => DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private async Task CallAsync(HttpClient client, int times)
    {
        for (var i = 0; i < times; i++)
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat)).StatusCode);
    }

    private static async Task<JsonObject> GetJsonAsync(HttpClient client, string url)
    {
        var response = await client.GetAsync(url);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonNode.Parse(text)!.AsObject();
    }

    private HttpClient ClientWith(string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>A usage row written directly (for days, models and failures the fake upstream does not produce).</summary>
    private Task InsertUsageAsync(Guid userId, Guid keyId, string model, DateTimeOffset at, long prompt, long completion, long cached, long cost, int status = 200) =>
        UsageData.InsertAsync(app.Database, [new RawUsage(userId, keyId, model, "fake", at, prompt, completion, cached, cost, status, 42)]);

    /// <summary>The key's row id, found by what the database keeps of it (prefix and last four characters).</summary>
    private Task<Guid> KeyIdAsync(string secret) =>
        app.Database.ScalarAsync<Guid>($"select id from api_keys where prefix = '{secret[..12]}' and last4 = '{secret[^4..]}'");

    [Fact]
    public async Task Balance_equals_the_ledger_and_shows_the_keys_own_spend()
    {
        app.Upstream.Reset();
        var (client, key, userId) = await app.CreateApiClientAsync(creditMicros: 12_345_678);
        await CallAsync(client, 3);
        await app.WaitForUsageAsync();

        var body = await GetJsonAsync(client, "/api/v1/balance");
        var (balance, _, ledger) = await app.MoneyAsync(userId);

        Assert.Equal("balance", body["object"]!.GetValue<string>());
        Assert.Equal(12_345_678 - 3 * 18, ledger);
        Assert.Equal(ledger, balance);
        Assert.Equal("12.345624", body["balance_usd"]!.GetValue<string>());
        var held = decimal.Parse(body["held_usd"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        var available = decimal.Parse(body["available_usd"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        Assert.Equal(12.345624m, held + available);
        Assert.True(held >= 0);
        Assert.Equal(1234.5624m, body["credits"]!.GetValue<decimal>());   // 1 credit = 0.01 USD
        Assert.Equal("USD", body["currency"]!.GetValue<string>());

        var keyObject = body["key"]!.AsObject();
        Assert.Equal("test key", keyObject["name"]!.GetValue<string>());
        Assert.StartsWith(keyObject["prefix"]!.GetValue<string>(), key, StringComparison.Ordinal);
        Assert.Equal("0.000054", keyObject["spent_usd"]!.GetValue<string>());
        Assert.Null(keyObject["credit_limit_usd"]);
        Assert.True(keyObject.ContainsKey("credit_limit_usd"));
    }

    [Fact]
    public async Task Balance_of_an_account_without_credit_is_zero_and_a_key_limit_is_shown()
    {
        var userId = await app.CreateUserAsync();
        using var client = ClientWith(await app.IssueKeyAsync(userId, new KeyLimits(CreditLimitMicros: 2_500_000)));

        var body = await GetJsonAsync(client, "/api/v1/balance");

        Assert.Equal("0.000000", body["balance_usd"]!.GetValue<string>());
        Assert.Equal("0.000000", body["available_usd"]!.GetValue<string>());
        Assert.Equal("0.000000", body["held_usd"]!.GetValue<string>());
        Assert.Equal(0m, body["credits"]!.GetValue<decimal>());
        Assert.Equal("2.500000", body["key"]!["credit_limit_usd"]!.GetValue<string>());
        Assert.Equal("0.000000", body["key"]!["spent_usd"]!.GetValue<string>());
    }

    [Fact]
    public async Task Usage_by_day_model_and_key_equals_the_owners_usage_rows_and_nothing_else()
    {
        app.Upstream.Reset();
        var (client, key, userId) = await app.CreateApiClientAsync();
        var secondKey = await app.IssueKeyAsync(userId);
        using var second = ClientWith(secondKey);
        var (stranger, _, strangerId) = await app.CreateApiClientAsync();
        await CallAsync(client, 2);
        await CallAsync(second, 1);
        await CallAsync(stranger, 4);
        await app.WaitForUsageAsync();

        // Earlier days, another model, a failure; and the range's edges: the last second of the end day
        // counts, the first second after it does not, nor does anything before the start day.
        var keyId = await KeyIdAsync(key);
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var start = today.AddDays(-9);
        var threeDaysAgo = new DateTimeOffset(today.AddDays(-3).ToDateTime(new TimeOnly(12, 0)), TimeSpan.Zero);
        await InsertUsageAsync(userId, keyId, "test/other", threeDaysAgo, 100, 50, 20, 1_234_567);
        await InsertUsageAsync(userId, keyId, CreditsApp.Model, threeDaysAgo, 10, 0, 0, 0, status: 502);
        await InsertUsageAsync(userId, keyId, "test/other", new DateTimeOffset(start.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero), 1, 1, 0, 2);
        await InsertUsageAsync(userId, keyId, "test/other", new DateTimeOffset(start.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddTicks(-10), 1000, 1000, 0, 999_999);
        await InsertUsageAsync(strangerId, keyId, "test/other", threeDaysAgo, 5000, 5000, 0, 777_777);   // another user's row, even with this key id
        var end = today.AddDays(-1);
        await InsertUsageAsync(userId, keyId, "test/edge", new DateTimeOffset(end.ToDateTime(new TimeOnly(23, 59, 59)), TimeSpan.Zero), 3, 3, 0, 3);
        await InsertUsageAsync(userId, keyId, "test/edge", new DateTimeOffset(today.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero), 4, 4, 0, 4);

        var range = $"start={start:yyyy-MM-dd}&end={today:yyyy-MM-dd}";
        var expected = await ExpectedTotalsAsync(userId, start, today);
        Assert.Equal(3 + 5, expected.Requests);   // three calls and five rows in range

        // By day: every day of the range, in order, zero days included.
        var byDay = await GetJsonAsync(client, $"/api/v1/usage?{range}&group_by=day");
        Assert.Equal("list", byDay["object"]!.GetValue<string>());
        Assert.Equal($"{start:yyyy-MM-dd}", byDay["start"]!.GetValue<string>());
        Assert.Equal($"{today:yyyy-MM-dd}", byDay["end"]!.GetValue<string>());
        Assert.Equal("day", byDay["group_by"]!.GetValue<string>());
        var days = byDay["data"]!.AsArray();
        Assert.Equal(10, days.Count);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"{start.AddDays(i):yyyy-MM-dd}"), days.Select(d => d!["day"]!.GetValue<string>()));
        foreach (var day in days)
        {
            var d = DateOnly.ParseExact(day!["day"]!.GetValue<string>(), "yyyy-MM-dd", CultureInfo.InvariantCulture);
            AssertTotals(await ExpectedTotalsAsync(userId, d, d), day.AsObject());
        }
        var threeDays = days.Single(d => d!["day"]!.GetValue<string>() == $"{today.AddDays(-3):yyyy-MM-dd}")!;
        Assert.Equal(2, threeDays["requests"]!.GetValue<long>());
        Assert.Equal(1, threeDays["errors"]!.GetValue<long>());
        Assert.Equal("1.234567", threeDays["cost_usd"]!.GetValue<string>());
        AssertTotals(expected, byDay["total"]!.AsObject());

        // By model.
        var byModel = await GetJsonAsync(client, $"/api/v1/usage?{range}&group_by=model");
        var models = byModel["data"]!.AsArray().ToDictionary(m => m!["model"]!.GetValue<string>(), m => m!.AsObject());
        Assert.Equal(new[] { "test/edge", CreditsApp.Model, "test/other" }, models.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(4, models[CreditsApp.Model]["requests"]!.GetValue<long>());   // three calls and the failure
        Assert.Equal("0.000054", models[CreditsApp.Model]["cost_usd"]!.GetValue<string>());
        Assert.Equal(1, models[CreditsApp.Model]["errors"]!.GetValue<long>());
        Assert.Equal(2, models["test/edge"]["requests"]!.GetValue<long>());
        Assert.Equal("1.234569", models["test/other"]["cost_usd"]!.GetValue<string>());
        Assert.Equal(20, models["test/other"]["cached_tokens"]!.GetValue<long>());
        AssertTotals(expected, byModel["total"]!.AsObject());

        // By key: both of the owner's keys, named.
        var byKey = await GetJsonAsync(second, $"/api/v1/usage?{range}&group_by=key");
        var keys = byKey["data"]!.AsArray().Select(k => k!.AsObject()).ToList();
        Assert.Equal(2, keys.Count);
        var first = keys.Single(k => k["key_id"]!.GetValue<Guid>() == keyId);
        Assert.Equal("test key", first["key_name"]!.GetValue<string>());
        Assert.StartsWith(first["key_prefix"]!.GetValue<string>(), key, StringComparison.Ordinal);
        Assert.Equal(2 + 5, first["requests"]!.GetValue<long>());
        var other = keys.Single(k => k["key_id"]!.GetValue<Guid>() != keyId);
        Assert.StartsWith(other["key_prefix"]!.GetValue<string>(), secondKey, StringComparison.Ordinal);
        Assert.Equal(1, other["requests"]!.GetValue<long>());
        Assert.Equal("0.000018", other["cost_usd"]!.GetValue<string>());
        AssertTotals(expected, byKey["total"]!.AsObject());

        // The end day is included up to its last second, and nothing after it.
        var toYesterday = await GetJsonAsync(client, $"/api/v1/usage?start={start:yyyy-MM-dd}&end={end:yyyy-MM-dd}&group_by=model");
        AssertTotals(await ExpectedTotalsAsync(userId, start, end), toYesterday["total"]!.AsObject());
        Assert.Equal(1, toYesterday["data"]!.AsArray().Single(m => m!["model"]!.GetValue<string>() == "test/edge")!["requests"]!.GetValue<long>());
        Assert.Equal(1, toYesterday["data"]!.AsArray().Single(m => m!["model"]!.GetValue<string>() == CreditsApp.Model)!["requests"]!.GetValue<long>());   // the failure; today's calls are out

        // The stranger sees their own four calls and their one row, none of the owner's.
        var theirs = await GetJsonAsync(stranger, $"/api/v1/usage?{range}&group_by=model");
        var theirModels = theirs["data"]!.AsArray().ToDictionary(m => m!["model"]!.GetValue<string>(), m => m!.AsObject());
        Assert.Equal(new[] { CreditsApp.Model, "test/other" }, theirModels.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(4, theirModels[CreditsApp.Model]["requests"]!.GetValue<long>());
        Assert.Equal("0.000072", theirModels[CreditsApp.Model]["cost_usd"]!.GetValue<string>());
        Assert.Equal("0.777777", theirModels["test/other"]["cost_usd"]!.GetValue<string>());
        AssertTotals(await ExpectedTotalsAsync(strangerId, start, today), theirs["total"]!.AsObject());
        Assert.Equal(5, theirs["total"]!["requests"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_key_restricted_by_models_or_a_credit_limit_sees_only_its_own_usage()
    {
        var userId = await app.CreateUserAsync();
        var full = await app.IssueKeyAsync(userId);
        var byModel = await app.IssueKeyAsync(userId, new KeyLimits(AllowedModels: [CreditsApp.Model]));
        var byLimit = await app.IssueKeyAsync(userId, new KeyLimits(CreditLimitMicros: 5_000_000));
        var (fullId, byModelId) = (await KeyIdAsync(full), await KeyIdAsync(byModel));
        var now = DateTimeOffset.UtcNow;
        await InsertUsageAsync(userId, fullId, "test/secret-project", now.AddDays(-3), 100, 100, 0, 900_000);
        await InsertUsageAsync(userId, fullId, "test/secret-project", now.AddMinutes(-1), 10, 10, 0, 90_000);
        await InsertUsageAsync(userId, byModelId, CreditsApp.Model, now.AddDays(-3), 1, 2, 0, 3);
        await InsertUsageAsync(userId, byModelId, CreditsApp.Model, now.AddMinutes(-1), 4, 5, 0, 6);

        // The default 30 days (rollups and raw rows) and today alone (raw rows only), grouped by key.
        foreach (var range in new[] { "", $"start={Today}&end={Today}&" })
        {
            using var owner = ClientWith(full);
            using var modelKey = ClientWith(byModel);
            using var limitKey = ClientWith(byLimit);
            var all = await GetJsonAsync(owner, $"/api/v1/usage?{range}group_by=key");
            var own = await GetJsonAsync(modelKey, $"/api/v1/usage?{range}group_by=key");
            var none = await GetJsonAsync(limitKey, $"/api/v1/usage?{range}group_by=model");

            Assert.Equal(2, all["data"]!.AsArray().Count);
            var only = Assert.Single(own["data"]!.AsArray());
            Assert.Equal(byModelId.ToString(), only!["key_id"]!.GetValue<string>());
            Assert.Equal(range == "" ? "0.000009" : "0.000006", own["total"]!["cost_usd"]!.GetValue<string>());
            Assert.DoesNotContain("secret-project", own.ToJsonString(), StringComparison.Ordinal);
            Assert.Empty(none["data"]!.AsArray());
            Assert.Equal("0.000000", none["total"]!["cost_usd"]!.GetValue<string>());
            Assert.Equal("account", all["scope"]?.GetValue<string>());
            Assert.Equal("key", own["scope"]?.GetValue<string>());
            Assert.Equal("key", none["scope"]?.GetValue<string>());
        }
        // By day too: every day is there, with only the key's own cost.
        using var daily = ClientWith(byModel);
        Assert.Equal("0.000009", (await GetJsonAsync(daily, "/api/v1/usage"))["total"]!["cost_usd"]!.GetValue<string>());
    }

    [Fact]
    public async Task Usage_defaults_to_the_last_30_days_by_day()
    {
        var (client, _, _) = await app.CreateApiClientAsync();

        var body = await GetJsonAsync(client, "/api/v1/usage");

        Assert.Equal("day", body["group_by"]!.GetValue<string>());
        Assert.Equal(Today, body["end"]!.GetValue<string>());
        Assert.Equal(DateTime.UtcNow.AddDays(-29).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), body["start"]!.GetValue<string>());
        Assert.Equal(30, body["data"]!.AsArray().Count);
        Assert.Equal(0, body["total"]!["requests"]!.GetValue<long>());
        Assert.Equal("0.000000", body["total"]!["cost_usd"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("start=2025-13-01", "start")]
    [InlineData("start=yesterday", "start")]
    [InlineData("end=2025-1-5", "end")]
    [InlineData("start=2025-01-01&start=2025-01-02", "start")]
    [InlineData("group_by=week", "group_by")]
    [InlineData("group_by=", "group_by")]
    [InlineData("start=2025-02-01&end=2025-01-31", "start")]
    [InlineData("start=2024-01-01&end=2025-01-01", "start")]   // 367 days
    [InlineData("end=2020-01-01&start=2018-01-01", "start")]
    public async Task Bad_usage_parameters_get_400_naming_the_parameter(string query, string param)
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: 0);

        var response = await client.GetAsync($"/api/v1/usage?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(error["message"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_full_leap_year_of_366_days_is_allowed()
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: 0);

        var body = await GetJsonAsync(client, "/api/v1/usage?start=2024-01-01&end=2024-12-31");

        Assert.Equal(366, body["data"]!.AsArray().Count);
    }

    [Theory]
    [InlineData("/api/v1/balance", null)]
    [InlineData("/api/v1/usage", null)]
    [InlineData("/api/v1/balance", "Bearer ag_test_not-a-real-key")]
    [InlineData("/api/v1/usage?group_by=model", "Bearer ag_test_not-a-real-key")]
    public async Task Without_a_valid_key_both_endpoints_answer_401(string url, string? authorization)
    {
        using var client = app.CreateClient();
        if (authorization is not null) client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", authorization);

        var response = await client.GetAsync(url);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("invalid_api_key", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_revoked_key_gets_401()
    {
        var (client, key, _) = await app.CreateApiClientAsync(creditMicros: 0);
        await app.Database.ExecuteAsync($"update api_keys set revoked_at = now() where id = '{await KeyIdAsync(key)}'");

        // The key cache may still hold the key for a moment; the balance query reads the key row itself.
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/balance")).StatusCode);
    }

    [Fact]
    public async Task The_gateway_catch_all_still_answers_other_paths_and_methods()
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: 0);

        var wrongMethod = await client.PostAsync("/api/v1/balance", new StringContent("{}"));
        var unknown = await client.GetAsync("/api/v1/balances");

        Assert.Equal(HttpStatusCode.NotFound, wrongMethod.StatusCode);
        Assert.Equal("unknown_url", (await wrongMethod.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("unknown_url", (await unknown.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["code"]!.GetValue<string>());
    }

    private sealed record Totals(long Requests, long PromptTokens, long CompletionTokens, long CachedTokens, long CostMicros, long Errors);

    /// <summary>What the rows say, summed independently of the code under test.</summary>
    private async Task<Totals> ExpectedTotalsAsync(Guid userId, DateOnly first, DateOnly last)
    {
        var where = $"user_id = '{userId}' and created_at >= '{first:yyyy-MM-dd}T00:00:00Z' and created_at < '{last.AddDays(1):yyyy-MM-dd}T00:00:00Z'";
        async Task<long> Sum(string expression) =>
            await app.Database.ScalarAsync<long>($"select coalesce({expression}, 0)::bigint from usage_events where {where}");
        return new Totals(await Sum("count(*)"), await Sum("sum(prompt_tokens)"), await Sum("sum(completion_tokens)"),
            await Sum("sum(cached_tokens)"), await Sum("sum(cost_micros)"), await Sum("count(*) filter (where status >= 400)"));
    }

    private static void AssertTotals(Totals expected, JsonObject actual)
    {
        Assert.Equal(expected.Requests, actual["requests"]!.GetValue<long>());
        Assert.Equal(expected.PromptTokens, actual["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(expected.CompletionTokens, actual["completion_tokens"]!.GetValue<long>());
        Assert.Equal(expected.CachedTokens, actual["cached_tokens"]!.GetValue<long>());
        Assert.Equal((expected.CostMicros / 1_000_000m).ToString("0.000000", CultureInfo.InvariantCulture), actual["cost_usd"]!.GetValue<string>());
        Assert.Equal(expected.Errors, actual["errors"]!.GetValue<long>());
    }
}
