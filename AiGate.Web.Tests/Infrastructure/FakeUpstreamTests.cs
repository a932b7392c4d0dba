using System.Net.Http.Json;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.InfrastructureTests;

public sealed class FakeUpstreamTests
{
    [Fact]
    public async Task Serves_mapped_routes_on_loopback_and_records_requests()
    {
        await using var upstream = await FakeUpstream.StartAsync(app =>
            app.MapPost("/v1/echo", static async (HttpRequest request) => Results.Text(await new StreamReader(request.Body).ReadToEndAsync())));
        using var client = new HttpClient { BaseAddress = upstream.BaseUrl };

        var response = await client.PostAsJsonAsync("/v1/echo", new { hello = "world" });

        Assert.Equal("127.0.0.1", upstream.BaseUrl.Host);
        Assert.Equal("{\"hello\":\"world\"}", await response.Content.ReadAsStringAsync());
        var recorded = Assert.Single(upstream.Requests);
        Assert.Equal("POST", recorded.Method);
        Assert.Equal("/v1/echo", recorded.PathAndQuery);
        Assert.Equal("{\"hello\":\"world\"}", recorded.Body);
    }
}
