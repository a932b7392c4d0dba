using System.Net.Http.Headers;
using AiGate.Web.Data;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// The real app, in-process, on its own migrated database. The Hangfire server is off unless a
/// test asks for it (<see cref="Settings"/>); tests talk to the app over HTTP through intent methods.
/// Use it as a class fixture (one app and database per test class).
/// </summary>
public class AiGateApp : WebApplicationFactory<Program>, IAsyncLifetime
{
    private TestDatabase? _database;

    public TestDatabase Database => _database ?? throw new InvalidOperationException("Not initialised yet.");

    /// <summary>Configuration on top of the defaults; override to change it for a fixture.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>();

    public virtual async Task InitializeAsync() => _database = await TestDatabase.CreateMigratedAsync();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("ConnectionStrings:Default", Database.ConnectionString);
        builder.UseSetting("Jobs:SchedulerEnabled", "false");
        builder.UseSetting("Providers:echo:Kind", "echo");
        // Account rate limits come from the plan (no billing account = the free plan, plan 0). Tests of other
        // features make more calls a minute than the free plan allows; rate-limit tests set their own limits.
        builder.UseSetting("Billing:Plans:0:RequestsPerMinute", "100000");
        builder.UseSetting("Billing:Plans:0:TokensPerMinute", "1000000000");
        foreach (var (key, value) in Settings) builder.UseSetting(key, value);
    }

    /// <summary>A user with a confirmed e-mail, written straight to the database (accounts are not what these tests test).</summary>
    public async Task<Guid> CreateUserAsync(string? email = null, bool confirmed = true)
    {
        email ??= $"user-{Guid.NewGuid():N}@example.test";
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var user = new AppUser
        {
            Id = Guid.CreateVersion7(), UserName = email, NormalizedUserName = email.ToUpperInvariant(), Email = email,
            NormalizedEmail = email.ToUpperInvariant(), EmailConfirmed = confirmed, SecurityStamp = Guid.NewGuid().ToString("N"),
            CreatedAt = DateTimeOffset.UtcNow,
        };
        db.Users.Add(user);
        await db.SaveChangesAsync();
        return user.Id;
    }

    /// <summary>Issues a key through the app's own issuer and returns its secret.</summary>
    public async Task<string> IssueKeyAsync(Guid ownerId, KeyLimits? limits = null)
    {
        await using var scope = Services.CreateAsyncScope();
        var (_, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssueAsync(ownerId, "test key", limits ?? new KeyLimits(), CancellationToken.None);
        return secret;
    }

    /// <summary>Credits a user through the ledger (kind grant).</summary>
    public Task GrantAsync(Guid userId, long micros) =>
        Services.GetRequiredService<Ledger>().PostAsync(userId, LedgerKinds.Grant, micros, "test grant", null, CancellationToken.None);

    /// <summary>Waits until every usage record so far is in the database.</summary>
    public async Task WaitForUsageAsync()
    {
        var writer = Services.GetRequiredService<UsageWriter>();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (writer.Pending > 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(0, writer.Pending);
    }

    /// <summary>A new user with $10 of credit and a key: an HTTP client that sends it as its bearer token.</summary>
    public async Task<(HttpClient Client, string Key, Guid UserId)> CreateApiClientAsync(KeyLimits? limits = null, long creditMicros = 10_000_000)
    {
        var userId = await CreateUserAsync();
        if (creditMicros > 0) await GrantAsync(userId, creditMicros);
        var key = await IssueKeyAsync(userId, limits);
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return (client, key, userId);
    }

    /// <summary>A client that does not follow redirects, so tests see exactly what the app answered.</summary>
    public HttpClient CreateBrowserlessClient() => CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    async Task IAsyncLifetime.DisposeAsync()
    {
        await base.DisposeAsync();
        if (_database is not null) await _database.DisposeAsync();
    }
}
