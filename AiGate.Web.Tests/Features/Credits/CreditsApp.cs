using System.Net.Http.Json;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>
/// One fake OpenAI-compatible provider and a model priced at exactly 1 micro-USD per token (input,
/// output and cached, margin ×1), so costs in these tests are token counts.
/// </summary>
public class CreditsApp : AiGateApp
{
    public const string Model = "test/metered";
    public FakeOpenAi Upstream { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Upstream = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(Model, "Metered", "fake", "fake-model");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:fake:Kind"] = "openai", ["Providers:fake:BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers:fake:ApiKey"] = "sk-fake",
        ["Providers:fake:StreamIdleSeconds"] = "5",
    };

    public async Task<(long Balance, long Held, long LedgerSum)> MoneyAsync(Guid userId)
    {
        var balance = await Database.ScalarAsync<long>($"select coalesce((select balance_micros from credit_accounts where user_id = '{userId}'), 0)");
        var held = await Database.ScalarAsync<long>($"select coalesce((select held_micros from credit_accounts where user_id = '{userId}'), 0)");
        var ledger = await Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'");
        return (balance, held, ledger);
    }

    /// <summary>
    /// The environment of another instance of the built app on this fixture's database and fake provider: lease TTL 10 s,
    /// no scheduler, and (as this fixture) the free plan's rate limits lifted so they are not what refuses a test's calls.
    /// </summary>
    public Dictionary<string, string?> InstanceEnvironment() => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Testing", ["ConnectionStrings__Default"] = Database.ConnectionString,
        ["Jobs__SchedulerEnabled"] = "false", ["Credits__LeaseTtlSeconds"] = "10",
        ["Providers__fake__Kind"] = "openai", ["Providers__fake__BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers__fake__ApiKey"] = "sk-fake",
        ["Billing__Plans__0__RequestsPerMinute"] = "100000", ["Billing__Plans__0__TokensPerMinute"] = "1000000000",
    };

    /// <summary>
    /// A second instance of the built app on this fixture's database and fake provider (lease TTL 10 s), ready: its
    /// first call with <paramref name="key"/> passed (a fresh instance answers 503 until its first lease heartbeat).
    /// </summary>
    public async Task<(AppProcess Child, HttpClient Http)> StartInstanceAsync(string key, Dictionary<string, string?>? extra = null)
    {
        var environment = InstanceEnvironment();
        environment["Providers__fake__StreamIdleSeconds"] = "30";
        foreach (var (k, v) in extra ?? []) environment[k] = v;
        var child = AppProcess.Start(environment);
        var http = new HttpClient { BaseAddress = await child.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var first = await http.PostAsJsonAsync("/api/v1/chat/completions", ChatBody());
            if (first.StatusCode == System.Net.HttpStatusCode.OK) break;
            Assert.True(first.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline, $"{first.StatusCode}\n{child.Log}");
            await Task.Delay(200);
        }
        return (child, http);
    }

    /// <summary>What the user's lease rows hold: the account's held credit must equal it whenever no top-up is running.</summary>
    public Task<long> LeaseRowsHoldAsync(Guid userId) =>
        Database.ScalarAsync<long>($"select coalesce(sum(held_micros), 0)::bigint from credit_leases where user_id = '{userId}'");

    /// <summary>
    /// Another transaction's lock on the account's row, held until disposed (rolled back): what a lease top-up meets when
    /// the database hangs or a long transaction holds the row.
    /// </summary>
    public async Task<IAsyncDisposable> LockAccountRowAsync(Guid userId)
    {
        var connection = new Npgsql.NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using (var command = new Npgsql.NpgsqlCommand($"select 1 from credit_accounts where user_id = '{userId}' for update", connection, transaction))
            await command.ExecuteScalarAsync();
        return new AccountLock(connection, transaction);
    }

    private sealed class AccountLock(Npgsql.NpgsqlConnection connection, Npgsql.NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await transaction.RollbackAsync();
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }

    /// <summary>A small chat request for <see cref="Model"/>.</summary>
    public static object ChatBody(bool stream = false, int maxTokens = 400) =>
        new { model = Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = maxTokens, stream };

    public Task<long> UsageCostAsync(Guid userId) =>
        Database.ScalarAsync<long>($"select coalesce(sum(cost_micros), 0)::bigint from usage_events where user_id = '{userId}'");
}
