using System.Collections.Concurrent;
using System.Collections.Frozen;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>
/// What routing knows about health, in memory, so the request path never waits on the database.
/// Every <see cref="ProviderHealthOptions.SnapshotRefreshSeconds"/> (and at once when the health job
/// publishes <c>provider-health</c>) each instance does two statements off the request path: it adds the
/// traffic outcomes its router counted since the last time to <c>provider_traffic</c>, and it reloads
/// <c>provider_health</c> and <c>route_health</c>. If the database is unreachable the last snapshot stands.
/// </summary>
public sealed partial class HealthSnapshot(NpgsqlDataSource dataSource, CacheNotifications notifications,
    IOptions<ProviderHealthOptions> options, ILogger<HealthSnapshot> logger) : BackgroundService
{
    public const string Notice = "provider-health";

    private sealed class Counter
    {
        public long Successes;
        public long Failures;
    }

    private readonly ConcurrentDictionary<(string Provider, string Model), Counter> _traffic = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile State _state = State.Empty;

    /// <summary>A route's state: its own record, else its provider's, else healthy (never checked yet).</summary>
    public HealthState Route(string provider, string upstreamModel)
    {
        var state = _state;
        if (state.Routes.TryGetValue((provider, upstreamModel), out var route)) return route;
        return state.Providers.GetValueOrDefault(provider, HealthState.Healthy);
    }

    /// <summary>The router's view of one attempt: answered (even a 4xx that is the caller's fault) or failed.</summary>
    public void RecordOutcome(string provider, string upstreamModel, bool succeeded)
    {
        var counter = _traffic.GetOrAdd((provider, upstreamModel), static _ => new Counter());
        if (succeeded) Interlocked.Increment(ref counter.Successes);
        else Interlocked.Increment(ref counter.Failures);
    }

    /// <summary>Sends the counted traffic and reloads the states. Safe to call at any time (tests do).</summary>
    public async Task RefreshAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            await FlushTrafficAsync(ct);
            await ReloadAsync(ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task FlushTrafficAsync(CancellationToken ct)
    {
        var providers = new List<string>();
        var models = new List<string>();
        var successes = new List<long>();
        var failures = new List<long>();
        foreach (var (key, counter) in _traffic)
        {
            var s = Interlocked.Exchange(ref counter.Successes, 0);
            var f = Interlocked.Exchange(ref counter.Failures, 0);
            if (s == 0 && f == 0) continue;
            providers.Add(key.Provider);
            models.Add(key.Model);
            successes.Add(s);
            failures.Add(f);
        }
        if (providers.Count == 0) return;
        try
        {
            // One statement for every route: this minute's bucket, added to what other instances sent.
            await using var command = dataSource.CreateCommand("""
                insert into provider_traffic (provider, upstream_model, bucket_start, successes, failures)
                select p, m, date_trunc('minute', now()), s, f from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) as t(p, m, s, f)
                on conflict (provider, upstream_model, bucket_start) do update
                set successes = provider_traffic.successes + excluded.successes, failures = provider_traffic.failures + excluded.failures
                """);
            command.Parameters.Add(new() { Value = providers.ToArray() });
            command.Parameters.Add(new() { Value = models.ToArray() });
            command.Parameters.Add(new() { Value = successes.ToArray() });
            command.Parameters.Add(new() { Value = failures.ToArray() });
            await command.ExecuteNonQueryAsync(ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            // Put the counts back so the next flush carries them (health data, not money: best effort).
            for (var i = 0; i < providers.Count; i++)
            {
                var counter = _traffic.GetOrAdd((providers[i], models[i]), static _ => new Counter());
                Interlocked.Add(ref counter.Successes, successes[i]);
                Interlocked.Add(ref counter.Failures, failures[i]);
            }
            throw;
        }
    }

    private async Task ReloadAsync(CancellationToken ct)
    {
        var providers = new Dictionary<string, HealthState>(StringComparer.Ordinal);
        var routes = new Dictionary<(string, string), HealthState>();
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("select provider, state from provider_health"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("select provider, upstream_model, state from route_health"));
        await using var reader = await batch.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            providers[reader.GetString(0)] = Enum.Parse<HealthState>(reader.GetString(1));
        await reader.NextResultAsync(ct);
        while (await reader.ReadAsync(ct))
            routes[(reader.GetString(0), reader.GetString(1))] = Enum.Parse<HealthState>(reader.GetString(2));
        _state = new State(providers.ToFrozenDictionary(StringComparer.Ordinal), routes.ToFrozenDictionary());
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        notifications.Subscribe(payload =>
        {
            if (payload is null or Notice) _ = Task.Run(() => RefreshQuietlyAsync(stoppingToken), stoppingToken);
        });
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SnapshotRefreshSeconds));
        await RefreshQuietlyAsync(stoppingToken);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) await RefreshQuietlyAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await RefreshQuietlyAsync(cancellationToken);   // hand over the last counts
    }

    private async Task RefreshQuietlyAsync(CancellationToken ct)
    {
        try
        {
            await RefreshAsync(ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or OperationCanceledException or InvalidOperationException
                                       or ObjectDisposedException)   // stopping after the data source is gone
        {
            LogRefreshFailed(ex);
        }
    }

    private sealed record State(FrozenDictionary<string, HealthState> Providers, FrozenDictionary<(string, string), HealthState> Routes)
    {
        public static readonly State Empty = new(FrozenDictionary<string, HealthState>.Empty, FrozenDictionary<(string, string), HealthState>.Empty);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not refresh provider health; routing keeps the previous snapshot")]
    private partial void LogRefreshFailed(Exception ex);
}
