using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using AiGate.Web.Features.Keys;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Keys;

/// <summary>Revocation and rotation take effect on every instance within seconds (RELIABILITY K5, K6).</summary>
public sealed class KeyRevocationTests(AiGateApp app) : IClassFixture<AiGateApp>, IAsyncLifetime
{
    private WebApplicationFactory<Program> _other = null!;

    public Task InitializeAsync()
    {
        // A second instance of the app on the same database, with its own caches and listener.
        _other = SecondInstance.WithEcho(app.Database.ConnectionString);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _other.DisposeAsync();

    [Fact]
    public async Task A_key_revoked_on_one_instance_is_refused_by_the_other_within_two_seconds()
    {
        var userId = await app.CreateUserAsync();
        var (key, secret) = await IssueAsync(userId);
        var onA = Client(app, secret);
        var onB = Client(_other, secret);
        Assert.Equal(HttpStatusCode.OK, (await onA.GetAsync("/api/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/models")).StatusCode);   // now cached on B

        await using (var scope = app.Services.CreateAsyncScope())
            Assert.True(await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().RevokeAsync(userId, key.Id, CancellationToken.None));
        var revokedAt = Stopwatch.StartNew();

        HttpStatusCode status;
        while ((status = (await onB.GetAsync("/api/v1/models")).StatusCode) == HttpStatusCode.OK && revokedAt.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.True(revokedAt.Elapsed < TimeSpan.FromSeconds(2), $"instance B accepted the revoked key for {revokedAt.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(HttpStatusCode.Unauthorized, (await onA.GetAsync("/api/v1/models")).StatusCode);
    }

    [Fact]
    public async Task Only_the_owner_can_revoke_a_key()
    {
        var owner = await app.CreateUserAsync();
        var stranger = await app.CreateUserAsync();
        var (key, secret) = await IssueAsync(owner);

        await using (var scope = app.Services.CreateAsyncScope())
            Assert.False(await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().RevokeAsync(stranger, key.Id, CancellationToken.None));

        Assert.Equal(HttpStatusCode.OK, (await Client(app, secret).GetAsync("/api/v1/models")).StatusCode);
    }

    [Fact]
    public async Task Rotation_gives_a_new_key_at_once_and_ends_the_old_one_after_the_grace_period()
    {
        var userId = await app.CreateUserAsync();
        var (key, oldSecret) = await IssueAsync(userId);
        var onB = Client(_other, oldSecret);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/models")).StatusCode);

        (ApiKey Key, string Secret)? rotated;
        await using (var scope = app.Services.CreateAsyncScope())
            rotated = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().RotateAsync(userId, key.Id, TimeSpan.FromSeconds(2), CancellationToken.None);

        Assert.NotNull(rotated);
        Assert.NotEqual(oldSecret, rotated.Value.Secret);
        Assert.Equal(HttpStatusCode.OK, (await Client(_other, rotated.Value.Secret).GetAsync("/api/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/models")).StatusCode);   // still inside the grace period

        await Task.Delay(TimeSpan.FromSeconds(2.2));
        Assert.Equal(HttpStatusCode.Unauthorized, (await onB.GetAsync("/api/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client(_other, rotated.Value.Secret).GetAsync("/api/v1/models")).StatusCode);
    }

    [Fact]
    public async Task The_database_holds_only_a_hash_prefix_and_last_four()
    {
        var userId = await app.CreateUserAsync();
        var (key, secret) = await IssueAsync(userId);

        var dump = await app.Database.ScalarAsync<string>($"select row_to_json(k)::text from api_keys k where id = '{key.Id}'");

        Assert.DoesNotContain(secret, dump!, StringComparison.Ordinal);
        Assert.DoesNotContain(secret[12..^4], dump!, StringComparison.Ordinal);
        Assert.Contains(secret[..12], dump!, StringComparison.Ordinal);
        Assert.Contains(secret[^4..], dump!, StringComparison.Ordinal);
    }

    private async Task<(ApiKey Key, string Secret)> IssueAsync(Guid userId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssueAsync(userId, "k", new KeyLimits(), CancellationToken.None);
    }

    private static HttpClient Client(WebApplicationFactory<Program> factory, string key)
    {
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
