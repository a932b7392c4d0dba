using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>Bad input always gets a clear 4xx in OpenAI's envelope, naming the field; never a 500 (RELIABILITY Z2).</summary>
public sealed class RequestValidationTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    public static TheoryData<string, int, string?> BadBodies => new()
    {
        { "not json", 400, null },
        { "[1,2,3]", 400, null },
        { "{}", 400, "model" },
        { """{"model":42,"messages":[{"role":"user","content":"x"}]}""", 400, "model" },
        { """{"model":"echo/echo-1"}""", 400, "messages" },
        { """{"model":"echo/echo-1","messages":[]}""", 400, "messages" },
        { """{"model":"echo/echo-1","messages":"hi"}""", 400, "messages" },
        { """{"model":"echo/echo-1","messages":[{"content":"no role"}]}""", 400, "messages[0].role" },
        { """{"model":"echo/echo-1","messages":[{"role":"wizard","content":"x"}]}""", 400, "messages[0].role" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"max_tokens":-5}""", 400, "max_tokens" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}""", 400, "max_tokens" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"max_tokens":99999999}""", 400, "max_tokens" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"n":1000000}""", 400, "n" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"temperature":"hot"}""", 400, "temperature" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"stream":"yes"}""", 400, "stream" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"stream_options":7}""", 400, "stream_options" },
        { """{"model":"no/such-model","messages":[{"role":"user","content":"x"}]}""", 404, "model" },
        { """{"model":"echo/echo-embed","messages":[{"role":"user","content":"x"}]}""", 400, "model" },
        // Priced by OpenAI outside the usage we bill from: refused before anything is reserved.
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"service_tier":"priority"}""", 400, "service_tier" },
        { """{"model":"echo/echo-1","messages":[{"role":"user","content":"x"}],"web_search_options":{}}""", 400, "web_search_options" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task Bad_chat_bodies_get_an_OpenAI_error_naming_the_field(string body, int status, string? param)
    {
        var (client, _, _) = await app.CreateApiClientAsync();

        var response = await client.PostAsync("/api/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(status, (int)response.StatusCode);
        var error = await ErrorAsync(response);
        Assert.False(string.IsNullOrWhiteSpace(error["message"]!.GetValue<string>()));
        Assert.Equal(param, error["param"]?.GetValue<string>());
    }

    [Fact]
    public async Task Deeply_nested_json_is_refused_not_crashed_on()
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        var deep = new string('[', 10_000) + new string(']', 10_000);

        var response = await client.PostAsync("/api/v1/chat/completions", new StringContent(deep, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("parse the JSON body", (await ErrorAsync(response))["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oversized_body_gets_413()
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        var huge = """{"model":"echo/echo-1","messages":[{"role":"user","content":" """ + new string('x', 21 * 1024 * 1024) + "\"}]}";

        var response = await client.PostAsync("/api/v1/chat/completions", new StringContent(huge, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("request_too_large", (await ErrorAsync(response))["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Wrong_content_type_is_refused()
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        var response = await client.PostAsync("/api/v1/chat/completions", new StringContent("model=x", Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Unknown_api_path_and_wrong_method_get_404_json_not_html()
    {
        var (client, _, _) = await app.CreateApiClientAsync();
        foreach (var response in new[] { await client.GetAsync("/api/v1/nope"), await client.GetAsync("/api/v1/chat/completions") })
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
            Assert.Equal("unknown_url", (await ErrorAsync(response))["code"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Keys_restricted_to_some_models_get_403_for_others()
    {
        var (client, _, _) = await app.CreateApiClientAsync(new AiGate.Web.Features.Keys.KeyLimits(AllowedModels: ["echo/echo-embed"]));
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", new { model = "echo/echo-1", messages = new[] { new { role = "user", content = "x" } } });
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("model_not_allowed", (await ErrorAsync(response))["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Every_kind_of_bad_key_gets_the_same_401_body()
    {
        var userId = await app.CreateUserAsync();
        var unconfirmedKey = await app.IssueKeyAsync(await app.CreateUserAsync(confirmed: false));
        var expiredKey = await app.IssueKeyAsync(userId, new AiGate.Web.Features.Keys.KeyLimits(ExpiresAt: DateTimeOffset.UtcNow.AddSeconds(-1)));
        string?[] keys = [null, "", "sk-not-ours", AiGate.Web.Features.Keys.ApiKeyFormat.Generate(), unconfirmedKey, expiredKey];
        var bodies = new HashSet<string>(StringComparer.Ordinal);

        foreach (var key in keys)
        {
            var client = app.CreateClient();
            if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var response = await client.GetAsync("/api/v1/models");
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            bodies.Add(await response.Content.ReadAsStringAsync());
        }

        var body = Assert.Single(bodies);
        Assert.Contains("\"code\":\"invalid_api_key\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signed_in_cookie_alone_is_not_an_API_credential()
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("Cookie", ".AspNetCore.Identity.Application=anything");
        var response = await client.GetAsync("/api/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    private static async Task<JsonObject> ErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (JsonObject)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
    }
}
