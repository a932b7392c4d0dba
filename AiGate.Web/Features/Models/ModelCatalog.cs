using System.Collections.Frozen;
using AiGate.Web.Data;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Models;

/// <summary>A catalogue model as the gateway uses it: price resolved, only routes whose provider is configured.</summary>
public sealed record ResolvedModel(
    string Id, string Name, string Kind, string OwnedBy, int ContextLength, int MaxOutputTokens,
    ModelPricing? Pricing, IReadOnlyList<ModelRoute> Routes, DateTimeOffset CreatedAt, MediaPricing? Media = null)
{
    public bool IsServable => IsPriced && Routes.Count > 0;

    /// <summary>Whether the price this kind is billed by is set; a model without it is never served (it would be billed at $0).</summary>
    public bool IsPriced => Kind switch
    {
        ModelKinds.Image => Media is { ImageMicros.Count: > 0 },
        ModelKinds.Speech => Media?.MicrosPerMChar is not null,
        ModelKinds.Transcription => Media?.MicrosPerMinute is not null,
        ModelKinds.Moderation => Media is not null,   // free unless a per-request price is set
        ModelKinds.Realtime => Pricing is not null && Media is { AudioInputPerMTok: not null, AudioOutputPerMTok: not null },
        _ => Pricing is not null,
    };
}

/// <summary>
/// The catalogue in memory: a frozen snapshot of enabled models, looked up by id or alias with no
/// database round trip. Reloaded every minute and at once when an admin change publishes
/// <c>catalog</c> (<see cref="CacheNotifications"/>). Settlement uses the <see cref="ResolvedModel"/> a call was
/// admitted with, so a price change applies to calls admitted after the reload, never to one in flight.
/// </summary>
public sealed partial class ModelCatalog(IServiceScopeFactory scopes, IOptions<ModelsOptions> options, CacheNotifications notifications,
    ILogger<ModelCatalog> logger) : BackgroundService
{
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromMinutes(1);
    private volatile Snapshot _snapshot = Snapshot.Empty;
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Names of the providers this instance can reach; set by the provider registry.</summary>
    public FrozenSet<string> ConfiguredProviders { get; set; } = FrozenSet<string>.Empty;

    public IReadOnlyList<ResolvedModel> All => _snapshot.Models;

    /// <summary>Providers an admin switched off at runtime, as of the last reload.</summary>
    public FrozenSet<string> DisabledProviders { get; private set; } = FrozenSet<string>.Empty;

    /// <summary><see cref="All"/>, loading the catalogue first when this instance has not yet (the first request on a cold instance).</summary>
    public async ValueTask<IReadOnlyList<ResolvedModel>> GetAllAsync(CancellationToken ct)
    {
        if (!_loaded.Task.IsCompleted) await ReloadAsync(ct);
        return _snapshot.Models;
    }

    public async ValueTask<ResolvedModel?> FindAsync(string idOrAlias, CancellationToken ct)
    {
        if (!_loaded.Task.IsCompleted) await ReloadAsync(ct);
        return _snapshot.ByName.GetValueOrDefault(idOrAlias);
    }

    public async Task ReloadAsync(CancellationToken ct)
    {
        await _reloadGate.WaitAsync(ct);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var rows = await db.Set<CatalogModel>().AsNoTracking().Include(m => m.Routes).Where(m => m.Enabled).ToListAsync(ct);
            // An admin's runtime switch (provider_settings): a disabled provider's routes leave the catalogue, so the router skips it.
            var disabled = (await db.Set<Providers.ProviderSetting>().AsNoTracking().Where(p => !p.Enabled).Select(p => p.Provider).ToListAsync(ct))
                .ToFrozenSet(StringComparer.Ordinal);
            var margin = options.Value.DefaultMarginBasisPoints;
            var models = rows.OrderBy(m => m.Id, StringComparer.Ordinal).Select(m => new ResolvedModel(
                m.Id, m.Name, m.Kind, m.OwnedBy, m.ContextLength, m.MaxOutputTokens,
                m.InputMicrosPerMTok is { } input && m.OutputMicrosPerMTok is { } output
                    ? new ModelPricing(input, output, m.CachedInputMicrosPerMTok ?? input, m.MarginBasisPoints ?? margin)
                    : null,
                [.. m.Routes.Where(r => r.Enabled && ConfiguredProviders.Contains(r.Provider) && !disabled.Contains(r.Provider)).OrderBy(r => r.Priority).ThenBy(r => r.Id)],
                m.CreatedAt, MediaPricing.Of(m, margin))).ToList();
            var byName = new Dictionary<string, ResolvedModel>(StringComparer.Ordinal);
            foreach (var (model, row) in models.Zip(rows.OrderBy(m => m.Id, StringComparer.Ordinal)))
            {
                byName[model.Id] = model;
                foreach (var alias in row.Aliases) byName.TryAdd(alias, model);
            }
            foreach (var unpriced in models.Where(m => !m.IsPriced)) LogUnpriced(unpriced.Id);
            _snapshot = new Snapshot(models, byName.ToFrozenDictionary(StringComparer.Ordinal));
            DisabledProviders = disabled;
            _loaded.TrySetResult();
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        notifications.Subscribe(payload =>
        {
            if (payload is null or "catalog") _ = Task.Run(() => ReloadQuietlyAsync(stoppingToken), stoppingToken);
        });
        using var timer = new PeriodicTimer(RefreshInterval);
        await ReloadQuietlyAsync(stoppingToken);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) await ReloadQuietlyAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private async Task ReloadQuietlyAsync(CancellationToken ct)
    {
        try
        {
            await ReloadAsync(ct);
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException or InvalidOperationException)
        {
            LogReloadFailed(ex);   // keep serving the last snapshot
        }
    }

    private sealed record Snapshot(IReadOnlyList<ResolvedModel> Models, FrozenDictionary<string, ResolvedModel> ByName)
    {
        public static readonly Snapshot Empty = new([], FrozenDictionary<string, ResolvedModel>.Empty);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId} has no price and will not be served until an admin sets one")]
    private partial void LogUnpriced(string modelId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not reload the model catalogue; serving the previous snapshot")]
    private partial void LogReloadFailed(Exception ex);
}
