using System.Net.Http.Json;
using System.Security.Cryptography;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Vault;

/// <summary>
/// The app with a vault KEK, a fake OpenAI, and two providers on it: <c>fake</c> with a configuration key and
/// <c>vaulted</c> with none (its keys come from the vault only), each serving one model priced at 1 micro-USD a token.
/// </summary>
public class VaultApp : AccountsApp
{
    public const string ConfigModel = "test/config-key";
    public const string VaultModel = "test/vault-key";
    public const string ConfigKey = "sk-config-0123456789";
    public string Kek { get; } = NewKek();
    public FakeOpenAi Upstream { get; private set; } = null!;

    public static string NewKek() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public override async Task InitializeAsync()
    {
        Upstream = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(ConfigModel, "Config key", "fake", "fake-model");
        await Database.InsertMeteredModelAsync(VaultModel, "Vault key", "vaulted", "fake-model");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Vault:Kek"] = Kek,
        ["Providers:fake:Kind"] = "openai", ["Providers:fake:BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers:fake:ApiKey"] = ConfigKey,
        ["Providers:vaulted:Kind"] = "openai", ["Providers:vaulted:BaseUrl"] = Upstream.BaseUrl.ToString(),
    };

    /// <summary>The environment of a second instance of the built app on this database and fake (add Vault__Kek yourself).</summary>
    public Dictionary<string, string?> InstanceEnvironment() => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Testing", ["ConnectionStrings__Default"] = Database.ConnectionString, ["Jobs__SchedulerEnabled"] = "false",
        ["Providers__fake__Kind"] = "openai", ["Providers__fake__BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers__fake__ApiKey"] = ConfigKey,
        ["Providers__vaulted__Kind"] = "openai", ["Providers__vaulted__BaseUrl"] = Upstream.BaseUrl.ToString(),
        ["Billing__Plans__0__RequestsPerMinute"] = "100000", ["Billing__Plans__0__TokensPerMinute"] = "1000000000",
    };

    /// <summary>Stores a platform key through the app's own admin code (actor <c>cli</c>, as the verb does).</summary>
    public async Task<Guid> AddProviderKeyAsync(string provider, string secret, string? label = null)
    {
        await using var scope = Services.CreateAsyncScope();
        var (id, error) = await scope.ServiceProvider.GetRequiredService<ProviderKeyAdmin>().AddAsync(provider, label, secret, CancellationToken.None);
        Assert.Null(error);
        return id!.Value;
    }

    /// <summary>Waits until this instance's ring holds exactly these keys (by last 4) for the provider.</summary>
    public Task WaitForKeysAsync(string provider, params string[] last4) => WaitForKeysAsync(Services.GetRequiredService<ProviderKeyRing>(), provider, last4);

    public static async Task WaitForKeysAsync(ProviderKeyRing ring, string provider, params string[] last4)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var now = ring.Active(provider).Select(k => k.Last4).Order(StringComparer.Ordinal).ToArray();
            if (now.SequenceEqual(last4.Order(StringComparer.Ordinal))) return;
            Assert.True(DateTime.UtcNow < deadline, $"{provider} keys: [{string.Join(", ", now)}], expected [{string.Join(", ", last4)}]");
            await Task.Delay(50);
        }
    }

    public static object ChatBody(string model) => new { model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 50 };

    /// <summary>The bearer keys the fake saw on chat calls, in order.</summary>
    public List<string> KeysSeen() => [.. Upstream.Requests.Where(r => r.PathAndQuery == "/v1/chat/completions")
        .Select(r => r.Headers.TryGetValue("Authorization", out var v) ? v["Bearer ".Length..] : "")];

    public static Task<HttpResponseMessage> ChatAsync(HttpClient client, string model) => client.PostAsJsonAsync("/api/v1/chat/completions", ChatBody(model));
}
