using System.Net;
using System.Net.Http.Json;
using AiGate.Web.Features.Usage;
using AiGate.Web.Tests.Features.Credits;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Usage;

/// <summary>A failed call's usage row keeps what the client was answered, for the request log's detail (issue 18).</summary>
public sealed class UsageErrorTests(CreditsApp app) : IClassFixture<CreditsApp>
{
    [Theory]
    [InlineData(FakeOpenAi.Behaviour.Fail400, 400, "upstream_rejected", "Invalid value for 'logit_bias': upstream says no.")]
    [InlineData(FakeOpenAi.Behaviour.Fail500, 502, "upstream_error", "The upstream provider failed to answer. Please retry.")]
    public async Task A_failed_call_keeps_the_error_it_was_answered_and_the_request_log_shows_it(
        FakeOpenAi.Behaviour fault, int status, string code, string message)
    {
        app.Upstream.Reset();
        app.Upstream.Mode = fault;
        try
        {
            var (client, _, userId) = await app.CreateApiClientAsync();
            using var response = await client.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody());
            Assert.Equal(status, (int)response.StatusCode);
            var requestId = response.Headers.GetValues("X-Request-Id").Single();
            await app.WaitForUsageAsync();

            var row = await app.Services.GetRequiredService<RequestLog>().FindAsync(userId, requestId, CancellationToken.None);
            Assert.NotNull(row);
            Assert.Equal(status, row.Status);
            Assert.Equal(code, row.ErrorCode);
            Assert.Equal(message, row.ErrorMessage);
            Assert.Equal(0, row.CostMicros);
        }
        finally
        {
            app.Upstream.Mode = FakeOpenAi.Behaviour.Ok;
        }
    }

    [Fact]
    public async Task A_call_that_succeeds_has_no_error()
    {
        app.Upstream.Reset();
        var (client, _, userId) = await app.CreateApiClientAsync();
        using var response = await client.PostAsJsonAsync("/api/v1/chat/completions", CreditsApp.ChatBody());
        response.EnsureSuccessStatusCode();
        await app.WaitForUsageAsync();
        var row = await app.Services.GetRequiredService<RequestLog>().FindAsync(userId, response.Headers.GetValues("X-Request-Id").Single(), CancellationToken.None);
        Assert.Null(row!.ErrorCode);
        Assert.Null(row.ErrorMessage);
    }
}
