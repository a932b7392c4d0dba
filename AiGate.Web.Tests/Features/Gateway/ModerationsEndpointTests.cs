using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Moderations;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// <c>POST /api/v1/moderations</c> through the real app: the official SDK's ModerationClient unchanged, the fake OpenAI's
/// moderation wire format, free by default (a usage row with cost 0), a per-request price when the catalogue sets one.
/// </summary>
public sealed class ModerationsEndpointTests(MediaApp app) : IClassFixture<MediaApp>
{
    private const long Credit = 10_000_000;

    [Fact]
    public async Task The_sdk_classifies_text_for_free_with_a_usage_row()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var result = (await app.Sdk(key).GetModerationClient(MediaApp.FreeModeration).ClassifyTextAsync("I will kill the process")).Value;

        Assert.True(result.Flagged);
        Assert.True(result.Violence.Flagged);
        Assert.False(result.Hate.Flagged);
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit);
        Assert.Equal((MediaApp.FreeModeration, 0L, 200), await app.UsageRowAsync(userId));
        Assert.Equal("omni-moderation-latest", JsonNode.Parse(app.OpenAi.Requests.Last(r => r.PathAndQuery == "/v1/moderations").Body)!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_priced_moderation_model_charges_per_request()
    {
        var (_, key, userId) = await app.CreateApiClientAsync(creditMicros: Credit);
        var results = (await app.Sdk(key).GetModerationClient(MediaApp.PaidModeration).ClassifyTextAsync(["hello", "kill it"])).Value;

        Assert.Equal([false, true], results.Select(r => r.Flagged));
        await app.AssertLedgerMatchesBalanceAsync(userId, Credit - 1_500);   // $0.001 × 1.5, once per request
        Assert.Equal((MediaApp.PaidModeration, 1_500L, 200), await app.UsageRowAsync(userId));
    }

    [Theory]
    [InlineData("""{"model":"test/moderation"}""", "input")]
    [InlineData("""{"model":"test/moderation","input":42}""", "input")]
    [InlineData("""{"model":"test/dall-e-3","input":"x"}""", "model")]
    public async Task Bad_requests_get_a_400_in_openais_envelope(string json, string param)
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: Credit);
        var before = app.OpenAi.ModerationRequests;
        var response = await client.PostAsync("/api/v1/moderations", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.Equal(before, app.OpenAi.ModerationRequests);
    }

    [Fact]
    public async Task The_echo_provider_answers_offline()
    {
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: Credit);
        var response = await client.PostAsJsonAsync("/api/v1/moderations", new { model = "echo/echo-moderation", input = new[] { "a", "b" } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("echo/echo-moderation", body["model"]!.GetValue<string>());
        Assert.Equal(2, body["results"]!.AsArray().Count);
    }
}
