using System.Net;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.InfrastructureTests;

public sealed class HealthAndPagesTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    [Fact]
    public async Task Healthz_says_the_process_is_alive()
    {
        var response = await app.CreateClient().GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Readyz_is_healthy_on_a_migrated_database()
    {
        var response = await app.CreateClient().GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Landing_page_says_what_AiGate_is()
    {
        var response = await app.CreateClient().GetAsync("/");
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("<h1", html, StringComparison.Ordinal);
        Assert.Contains("One API for every model", html, StringComparison.Ordinal);
        Assert.Contains("aria-label=\"Main\"", html, StringComparison.Ordinal);
        Assert.Contains("/api/v1", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_response_carries_security_headers_and_a_request_id()
    {
        var response = await app.CreateClient().GetAsync("/");

        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(response.Headers.GetValues("X-Request-Id").Single()));
        // Outside Production there is no HSTS (it would pin localhost to https).
        Assert.False(response.Headers.Contains("Strict-Transport-Security"));
    }

    [Fact]
    public async Task Api_answers_carry_nosniff_and_a_request_id_but_not_the_page_only_policies()
    {
        var response = await app.CreateClient().GetAsync("/api/v1/models");

        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.StartsWith("req_", response.Headers.GetValues("X-Request-Id").Single(), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Content-Security-Policy"));
        Assert.False(response.Headers.Contains("X-Frame-Options"));
        Assert.False(response.Headers.Contains("Permissions-Policy"));
    }

    [Fact]
    public async Task Unknown_page_gets_a_friendly_404_with_the_request_id()
    {
        var response = await app.CreateClient().GetAsync("/no/such/page");
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("Page not found", html, StringComparison.Ordinal);
        Assert.Contains(response.Headers.GetValues("X-Request-Id").Single(), html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_protection_keys_are_kept_in_PostgreSQL()
    {
        // The first protect creates the key ring; it must land in the database, where other instances read it.
        var protector = app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("test");
        var secret = protector.Protect("hello");

        Assert.Equal("hello", protector.Unprotect(secret));
        Assert.True(await app.Database.ScalarAsync<long>("select count(*) from data_protection_keys") >= 1);
    }
}

/// <summary>A database that was never migrated: the app is alive but not ready.</summary>
public sealed class ReadinessOnAnUnmigratedDatabaseTests : IAsyncLifetime
{
    private TestDatabase _database = null!;

    public async Task InitializeAsync() => _database = await TestDatabase.CreateEmptyAsync();
    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task Readyz_is_unavailable_while_migrations_are_pending()
    {
        await using var app = new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactory<Program>().WithWebHostBuilder(b =>
        {
            Microsoft.AspNetCore.Hosting.HostingAbstractionsWebHostBuilderExtensions.UseEnvironment(b, "Testing");
            b.UseSetting("ConnectionStrings:Default", _database.ConnectionString);
            b.UseSetting("Jobs:SchedulerEnabled", "false");
        });
        var client = app.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal("Unhealthy", await ready.Content.ReadAsStringAsync());
    }
}
