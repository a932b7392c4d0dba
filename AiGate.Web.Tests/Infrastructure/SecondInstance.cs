using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// Another instance of the app on a test's database, with its own caches, leases and notice listener: what a second
/// machine of a deployment is to the first. The scheduler stays off (the first instance's jobs are the ones under test).
/// </summary>
public static class SecondInstance
{
    /// <summary>The free plan's rate limits lifted, as in <see cref="AiGateApp"/>, so they are not what refuses a test's calls.</summary>
    public static readonly (string Key, string? Value)[] NoPlanLimits =
        [("Billing:Plans:0:RequestsPerMinute", "100000"), ("Billing:Plans:0:TokensPerMinute", "1000000000")];

    /// <summary>The echo provider only, plus <paramref name="settings"/>.</summary>
    public static WebApplicationFactory<Program> WithEcho(string connectionString, params IEnumerable<(string Key, string? Value)> settings) =>
        Of(connectionString, [("Providers:echo:Kind", "echo"), .. settings]);

    /// <summary>An OpenAI-kind provider <c>fake</c> at <paramref name="upstream"/>, the plan limits lifted.</summary>
    public static WebApplicationFactory<Program> WithFakeOpenAi(string connectionString, Uri upstream) =>
        Of(connectionString, [("Providers:fake:Kind", "openai"), ("Providers:fake:BaseUrl", upstream.ToString()), ("Providers:fake:ApiKey", "sk-fake"),
            .. NoPlanLimits]);

    public static WebApplicationFactory<Program> Of(string connectionString, IEnumerable<(string Key, string? Value)> settings) =>
        new WebApplicationFactory<Program>().WithWebHostBuilder(b =>
        {
            b.UseEnvironment("Testing");
            b.UseSetting("ConnectionStrings:Default", connectionString);
            b.UseSetting("Jobs:SchedulerEnabled", "false");
            foreach (var (key, value) in settings) b.UseSetting(key, value);
        });
}
