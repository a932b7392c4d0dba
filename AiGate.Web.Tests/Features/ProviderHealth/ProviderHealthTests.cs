using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.ProviderHealth;

/// <summary>
/// Two OpenAI-compatible fakes, "primary" (priority 0) and "backup" (priority 1), serving one model, and an
/// admin who gets the alerts. Health checks run through the job's own code (<see cref="HealthChecker"/>);
/// routing reads the snapshot after <see cref="HealthSnapshot.RefreshAsync"/>, as every instance does on its timer.
/// </summary>
public sealed class HealthApp : AccountsApp
{
    public const string Model = "test/health";
    public const string AdminEmail = "health-admin@example.test";
    public const string AdminPassword = "a long enough admin passphrase";
    public FakeOpenAi Primary { get; private set; } = null!;
    public FakeOpenAi Backup { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Primary = await FakeOpenAi.StartAsync();
        Backup = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
        await Database.InsertTwoRouteModelAsync(Model, "Health", 1000000, 1000000, 1000000, 10000);
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
        await CreateUserAsync(AdminEmail, AdminPassword, admin: true);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Providers:primary:Kind"] = "openai", ["Providers:primary:BaseUrl"] = Primary.BaseUrl.ToString(),
        ["Providers:primary:ApiKey"] = "sk-primary-provider-key", ["Providers:primary:TimeoutSeconds"] = "2",
        ["Providers:backup:Kind"] = "openai", ["Providers:backup:BaseUrl"] = Backup.BaseUrl.ToString(),
        ["Providers:backup:ApiKey"] = "sk-backup-provider-key",
        ["ProviderHealth:ProbeTimeoutSeconds"] = "2",
    };

    /// <summary>Runs one health check, as the job does.</summary>
    public async Task<IReadOnlyList<HealthTransition>> CheckAsync()
    {
        await using var scope = Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<HealthChecker>().CheckAsync("test-instance", CancellationToken.None);
    }

    public Task RefreshSnapshotAsync() => Services.GetRequiredService<HealthSnapshot>().RefreshAsync(CancellationToken.None);

    public async Task ResetAsync()
    {
        Primary.Reset();
        Backup.Reset();
        await RefreshSnapshotAsync();   // drop traffic counted by earlier tests into the table, then clear it
        await Database.ExecuteAsync("""
            delete from provider_health; delete from route_health; delete from provider_traffic; delete from provider_probes;
            delete from email_outbox where kind like 'provider-%';
            """);
        await RefreshSnapshotAsync();
    }

    public Task<long> AlertsAsync(string kind) =>
        Database.ScalarAsync<long>($"select count(*) from email_outbox where kind = '{kind}' and to_address = '{AdminEmail}'");

    public Task<string?> StateAsync(string provider) =>
        Database.ScalarAsync<string>($"select state from provider_health where provider = '{provider}'");
}

public sealed partial class ProviderHealthTests(HealthApp app) : IClassFixture<HealthApp>
{
    private static object Chat() => new { model = HealthApp.Model, messages = new[] { new { role = "user", content = "hi" } } };

    [Fact]
    public async Task A_failing_provider_goes_down_is_skipped_by_routing_then_recovers_with_one_email_per_transition()
    {
        await app.ResetAsync();
        var (client, _, _) = await app.CreateApiClientAsync();
        app.Primary.ModelsMode = FakeOpenAi.Behaviour.Fail500;
        app.Primary.Mode = FakeOpenAi.Behaviour.Fail500;

        // One and two failed probes: degraded, nobody is woken up; the third: down, one e-mail.
        await app.CheckAsync();
        Assert.Equal("Degraded", await app.StateAsync("primary"));
        await app.CheckAsync();
        Assert.Equal(0, await app.AlertsAsync("provider-down"));
        var transitions = await app.CheckAsync();
        Assert.Equal(new HealthTransition("primary", HealthState.Degraded, HealthState.Down), Assert.Single(transitions));
        Assert.Equal("Down", await app.StateAsync("primary"));
        Assert.Equal("Healthy", await app.StateAsync("backup"));
        Assert.Equal(1, await app.AlertsAsync("provider-down"));
        Assert.Equal(3, app.Primary.ModelListRequests);   // the probe is GET /v1/models, free at the provider
        Assert.Equal("Bearer sk-primary-provider-key", app.Primary.Requests.First(r => r.PathAndQuery == "/v1/models").Headers["Authorization"]);

        // Routing skips the down route: the backup answers and the primary is not even tried.
        await app.RefreshSnapshotAsync();
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("backup", response.Headers.GetValues("X-AiGate-Provider").Single());
        Assert.Equal(0, app.Primary.ChatRequests);

        // The public status page says so, signed out.
        var page = await app.CreateClient().GetStringAsync("/status");
        Assert.Equal("Down", StateOn(page, "primary"));
        Assert.Equal("Operational", StateOn(page, "backup"));
        Assert.Contains("Some providers are down", page, StringComparison.Ordinal);

        // More failures while down: no more e-mails.
        await app.CheckAsync();
        Assert.Equal(1, await app.AlertsAsync("provider-down"));

        // Recovery needs two good probes in a row.
        app.Primary.Reset();
        await app.CheckAsync();
        Assert.Equal("Down", await app.StateAsync("primary"));
        var recovered = await app.CheckAsync();
        Assert.Equal(new HealthTransition("primary", HealthState.Down, HealthState.Healthy), Assert.Single(recovered));
        Assert.Equal(1, await app.AlertsAsync("provider-recovered"));
        await app.CheckAsync();
        Assert.Equal(1, await app.AlertsAsync("provider-recovered"));
        Assert.Equal(1, await app.AlertsAsync("provider-down"));

        await app.RefreshSnapshotAsync();
        response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        Assert.Equal("primary", response.Headers.GetValues("X-AiGate-Provider").Single());
        page = await app.CreateClient().GetStringAsync("/status");
        Assert.Equal("Operational", StateOn(page, "primary"));
        // 7 probes of the primary today, 3 passed: 42.86 %.
        Assert.Matches(@"data-provider=""primary""[\s\S]*?data-testid=""uptime-24h"">42.86 %", page);
    }

    [Fact]
    public async Task Live_traffic_failures_mark_the_route_down_although_the_probe_passes()
    {
        await app.ResetAsync();
        var (client, _, _) = await app.CreateApiClientAsync();
        app.Primary.Mode = FakeOpenAi.Behaviour.Fail500;   // chat fails, the model list still answers

        for (var i = 0; i < 10; i++)
        {
            var failedOver = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
            Assert.Equal("backup", failedOver.Headers.GetValues("X-AiGate-Provider").Single());
        }
        Assert.Equal(10, app.Primary.ChatRequests);
        await app.RefreshSnapshotAsync();   // this instance hands its counts over
        Assert.Equal(10, await app.Database.ScalarAsync<long>("select sum(failures)::bigint from provider_traffic where provider = 'primary' and upstream_model = 'up-model-a'"));

        await app.CheckAsync();
        Assert.Equal("Down", await app.Database.ScalarAsync<string>("select state from route_health where provider = 'primary' and upstream_model = 'up-model-a'"));
        Assert.Equal("Healthy", await app.Database.ScalarAsync<string>("select probe_state from provider_health where provider = 'primary'"));
        Assert.Equal(1, await app.AlertsAsync("provider-down"));

        await app.RefreshSnapshotAsync();
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
        Assert.Equal("backup", response.Headers.GetValues("X-AiGate-Provider").Single());
        Assert.Equal(10, app.Primary.ChatRequests);   // not tried first

        // The failures age out of the window (no traffic reaches a down route): the probe state decides again.
        await app.Database.ExecuteAsync("update provider_traffic set bucket_start = bucket_start - interval '1 hour'");
        await app.CheckAsync();
        Assert.Equal("Healthy", await app.StateAsync("primary"));
        Assert.Equal(1, await app.AlertsAsync("provider-recovered"));
    }

    [Fact]
    public async Task When_every_route_is_down_the_gateway_still_tries_them()
    {
        await app.ResetAsync();
        var (client, _, _) = await app.CreateApiClientAsync();
        await app.Database.ExecuteAsync("""
            insert into route_health (provider, upstream_model, state, changed_at) values
              ('primary', 'up-model-a', 'Down', now()), ('backup', 'up-model-b', 'Down', now());
            """);
        await app.RefreshSnapshotAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("primary", response.Headers.GetValues("X-AiGate-Provider").Single());
    }

    [Fact]
    public async Task A_degraded_route_is_used_after_a_healthy_one_whatever_its_priority()
    {
        await app.ResetAsync();
        var (client, _, _) = await app.CreateApiClientAsync();
        await app.Database.ExecuteAsync("""
            insert into route_health (provider, upstream_model, state, changed_at) values
              ('primary', 'up-model-a', 'Degraded', now());
            """);
        await app.RefreshSnapshotAsync();

        var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());

        Assert.Equal("backup", response.Headers.GetValues("X-AiGate-Provider").Single());
        Assert.Equal(0, app.Primary.ChatRequests);
    }

    [Fact]
    public async Task Concurrent_checks_alert_each_transition_once()
    {
        await app.ResetAsync();
        app.Primary.ModelsMode = FakeOpenAi.Behaviour.Fail500;

        // Two instances' checks at once, four rounds: the provider row lock makes them take turns.
        for (var round = 0; round < 4; round++) await Task.WhenAll(app.CheckAsync(), app.CheckAsync());
        Assert.Equal("Down", await app.StateAsync("primary"));
        app.Primary.Reset();
        for (var round = 0; round < 3; round++) await Task.WhenAll(app.CheckAsync(), app.CheckAsync());
        Assert.Equal("Healthy", await app.StateAsync("primary"));

        Assert.Equal(1, await app.AlertsAsync("provider-down"));
        Assert.Equal(1, await app.AlertsAsync("provider-recovered"));
        // Healthy → degraded → down → healthy: three transitions, two of them alerted.
        Assert.Equal(3, await app.Database.ScalarAsync<int>("select version from provider_health where provider = 'primary'"));
    }

    [Fact]
    public async Task A_probe_that_never_answers_counts_as_a_failure()
    {
        await app.ResetAsync();
        app.Primary.ModelsMode = FakeOpenAi.Behaviour.Hang;

        await app.CheckAsync();

        Assert.Equal("Degraded", await app.StateAsync("primary"));
        Assert.Equal("no answer within 2 s", await app.Database.ScalarAsync<string>("select error from provider_probes where provider = 'primary'"));
        Assert.Null(await app.Database.ScalarAsync<int?>("select status_code from provider_probes where provider = 'primary'"));
    }

    private static string StateOn(string page, string provider) =>
        Regex.Match(page, $@"data-provider=""{provider}""[\s\S]*?data-testid=""provider-state"">([^<]+)<").Groups[1].Value;
}

public sealed class HealthRulesTests
{
    private static readonly ProviderHealthOptions Options = new();

    [Fact]
    public void Three_failed_probes_in_a_row_make_a_provider_down_and_two_good_ones_bring_it_back()
    {
        var (state, failures, successes) = (HealthState.Healthy, 0, 0);
        var seen = new List<HealthState>();
        foreach (var ok in new[] { false, false, false, true, false, true, true })
        {
            (state, failures, successes) = HealthRules.AfterProbe(state, failures, successes, ok, Options);
            seen.Add(state);
        }
        Assert.Equal([HealthState.Degraded, HealthState.Degraded, HealthState.Down, HealthState.Down, HealthState.Down, HealthState.Down, HealthState.Healthy], seen);
    }

    [Fact]
    public void A_good_probe_heals_a_degraded_provider_at_once()
    {
        var (state, _, _) = HealthRules.AfterProbe(HealthState.Degraded, 2, 0, ok: true, Options);
        Assert.Equal(HealthState.Healthy, state);
    }

    [Theory]
    [InlineData(9, 9, HealthState.Healthy)]     // too few calls to judge
    [InlineData(10, 1, HealthState.Healthy)]
    [InlineData(10, 2, HealthState.Degraded)]
    [InlineData(10, 5, HealthState.Down)]
    [InlineData(0, 0, HealthState.Healthy)]
    public void Traffic_is_judged_by_the_share_that_failed(long calls, long failures, HealthState expected) =>
        Assert.Equal(expected, HealthRules.FromTraffic(calls, failures, Options));
}
