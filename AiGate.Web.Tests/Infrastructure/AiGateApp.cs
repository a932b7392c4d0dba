using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// The real app, in-process, on its own migrated database. The Quartz scheduler is off unless a
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
        foreach (var (key, value) in Settings) builder.UseSetting(key, value);
    }

    /// <summary>A client that does not follow redirects, so tests see exactly what the app answered.</summary>
    public HttpClient CreateBrowserlessClient() => CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    async Task IAsyncLifetime.DisposeAsync()
    {
        await base.DisposeAsync();
        if (_database is not null) await _database.DisposeAsync();
    }
}
