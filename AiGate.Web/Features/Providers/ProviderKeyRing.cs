using System.Collections.Concurrent;
using System.Collections.Frozen;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Vault;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Providers;

/// <summary>One usable key of a provider, opened from the vault (or the configuration key). The secret never leaves the process.</summary>
public sealed class ProviderKey(Guid? id, string provider, string label, string last4, string secret, byte[]? sealedSecret = null)
{
    /// <summary>The <c>provider_keys</c> row, or null for <c>Providers__X__ApiKey</c>.</summary>
    public Guid? Id { get; } = id;
    public string Provider { get; } = provider;
    public string Label { get; } = label;
    public string Last4 { get; } = last4;
    internal string Secret { get; } = secret;
    /// <summary>The row's ciphertext this key was opened from: a reload reuses the key only while the row still holds exactly it.</summary>
    internal byte[]? SealedSecret { get; } = sealedSecret;
    internal long LastUsedTicks;
    internal long FlushedTicks;
    internal int Rejected;

    public static string LastFour(string secret) => secret.Length <= 4 ? new string('*', secret.Length) : secret[^4..];

    public override string ToString() => $"{Provider} key {Id?.ToString() ?? "from configuration"} (…{Last4})";
}

/// <summary>
/// The keys each provider is called with (issue 14): its configuration key (<c>Providers__X__ApiKey</c>, if set)
/// and its active keys in the vault, spread by round robin. A key that answers 401/403 leaves this instance's
/// ring at once; a vault key is then disabled in the database (audited, the admins e-mailed, the other instances
/// told), a configuration key only in memory (it comes back with the next deploy or restart). Adds, retirements and
/// re-enables reach every instance within a second or so over <see cref="CacheNotifications"/>
/// (<see cref="Notice"/>), with a reload every minute behind it. When each key was last used is kept in memory and
/// written every few seconds, never on the call's path.
/// </summary>
public sealed partial class ProviderKeyRing : BackgroundService
{
    public const string Notice = "provider-keys";
    private static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ReloadInterval = TimeSpan.FromMinutes(1);

    private readonly ProviderRegistry _registry;
    private readonly SecretVault _vault;
    private readonly NpgsqlDataSource _dataSource;
    private readonly CacheNotifications _notifications;
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _clock;
    private readonly ILogger<ProviderKeyRing> _logger;
    private readonly ConcurrentDictionary<string, byte> _disabledConfigKeys = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(ProviderKey Key, int Status)> _rejections = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private readonly Lock _swap = new();
    private volatile FrozenDictionary<string, KeySet> _sets;
    private volatile FrozenDictionary<Guid, ProviderKey> _vaultKeys = FrozenDictionary<Guid, ProviderKey>.Empty;
    private int _reloadRequested;

    public ProviderKeyRing(ProviderRegistry registry, SecretVault vault, NpgsqlDataSource dataSource, CacheNotifications notifications,
        IServiceScopeFactory scopes, TimeProvider clock, ILogger<ProviderKeyRing> logger)
    {
        _registry = registry;
        _vault = vault;
        _dataSource = dataSource;
        _notifications = notifications;
        _scopes = scopes;
        _clock = clock;
        _logger = logger;
        // Configuration keys serve from the first call, before (or without) the database.
        _sets = Build([]);
    }

    private sealed class KeySet(ProviderKey[] keys)
    {
        public readonly ProviderKey[] Keys = keys;
        public int Cursor;
    }

    /// <summary>The key for the next attempt (round robin), or null when the provider has no usable key.</summary>
    public ProviderKey? Next(string provider)
    {
        if (!_sets.TryGetValue(provider, out var set) || set.Keys.Length == 0) return null;
        var key = set.Keys[(uint)Interlocked.Increment(ref set.Cursor) % (uint)set.Keys.Length];
        Volatile.Write(ref key.LastUsedTicks, _clock.GetUtcNow().UtcTicks);
        return key;
    }

    /// <summary>A key to probe the provider with, without counting as a use.</summary>
    public ProviderKey? Peek(string provider) => _sets.TryGetValue(provider, out var set) && set.Keys.Length > 0 ? set.Keys[0] : null;

    /// <summary>The keys this instance is using for a provider now (for pages and tests).</summary>
    public IReadOnlyList<ProviderKey> Active(string provider) => _sets.TryGetValue(provider, out var set) ? set.Keys : [];

    /// <summary>The upstream refused the key itself (401/403): stop using it here now, and disable it for every instance.</summary>
    public void Rejected(ProviderKey key, int status)
    {
        if (Interlocked.Exchange(ref key.Rejected, 1) == 1) return;
        if (key.Id is null) _disabledConfigKeys[key.Provider] = 0;
        lock (_swap)
        {
            var sets = _sets.ToDictionary(StringComparer.Ordinal);
            if (sets.TryGetValue(key.Provider, out var set)) sets[key.Provider] = new KeySet([.. set.Keys.Where(k => !ReferenceEquals(k, key))]);
            _sets = sets.ToFrozenDictionary(StringComparer.Ordinal);
        }
        LogKeyRejected(key.Provider, key.Id?.ToString() ?? "configuration", key.Last4, status);
        _rejections.Enqueue((key, status));
        _wake.Release();
    }

    /// <summary>Reads the active vault keys again and swaps the ring.</summary>
    public async Task ReloadAsync(CancellationToken ct)
    {
        await _reloadGate.WaitAsync(ct);
        try
        {
            var rows = new List<(Guid Id, string Provider, string Label, byte[] Secret, int Version, string Last4)>();
            await using (var connection = await _dataSource.OpenConnectionAsync(ct))
            await using (var select = new NpgsqlCommand(
                "select id, provider, label, secret, key_version, last4 from provider_keys where status = 'active' order by created_at, id", connection))
            await using (var reader = await select.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                    rows.Add((reader.GetGuid(0), reader.GetString(1), reader.GetString(2), (byte[])reader[3], reader.GetInt32(4), reader.GetString(5)));
            }
            var known = _vaultKeys;
            var opened = new List<ProviderKey>(rows.Count);
            foreach (var row in rows)
            {
                if (known.TryGetValue(row.Id, out var existing) && Volatile.Read(ref existing.Rejected) == 0 && existing.SealedSecret.AsSpan().SequenceEqual(row.Secret))
                {
                    opened.Add(existing);
                    continue;
                }
                try
                {
                    var secret = await _vault.OpenAsync(SecretVault.PlatformOwner, ProviderKeyRow.Purpose, row.Id.ToString(),
                        new SealedSecret(row.Secret, row.Version), ct);
                    opened.Add(new ProviderKey(row.Id, row.Provider, row.Label, row.Last4, secret, row.Secret));
                }
                catch (VaultException ex)
                {
                    LogKeyUnreadable(row.Provider, row.Id, ex.Message);
                }
            }
            lock (_swap)
            {
                _sets = Build(opened);
                _vaultKeys = opened.Where(k => k.Id is not null).ToFrozenDictionary(k => k.Id!.Value);
            }
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    private FrozenDictionary<string, KeySet> Build(List<ProviderKey> vaultKeys)
    {
        var sets = new Dictionary<string, KeySet>(StringComparer.Ordinal);
        foreach (var provider in _registry.ByName.Values)
        {
            var keys = new List<ProviderKey>();
            if (!string.IsNullOrEmpty(provider.ApiKey) && !_disabledConfigKeys.ContainsKey(provider.Name))
                keys.Add(_sets?.TryGetValue(provider.Name, out var old) == true && old.Keys.FirstOrDefault(k => k.Id is null) is { } configKey
                    ? configKey
                    : new ProviderKey(null, provider.Name, "from configuration", ProviderKey.LastFour(provider.ApiKey), provider.ApiKey));
            foreach (var key in vaultKeys)
                if (key.Provider == provider.Name) keys.Add(key);
            sets[provider.Name] = new KeySet([.. keys]);
        }
        return sets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _notifications.Subscribe(payload =>
        {
            if (payload is not (null or Notice)) return;
            Interlocked.Exchange(ref _reloadRequested, 1);
            _wake.Release();
        });
        await ReloadQuietlyAsync(stoppingToken);
        var lastReload = _clock.GetTimestamp();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await _wake.WaitAsync(FlushInterval, stoppingToken);
                while (_rejections.TryDequeue(out var rejection)) await DisableQuietlyAsync(rejection.Key, rejection.Status, stoppingToken);
                if (Interlocked.Exchange(ref _reloadRequested, 0) == 1 || _clock.GetElapsedTime(lastReload) > ReloadInterval)
                {
                    await ReloadQuietlyAsync(stoppingToken);
                    lastReload = _clock.GetTimestamp();
                }
                await FlushLastUsedQuietlyAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private async Task ReloadQuietlyAsync(CancellationToken ct)
    {
        try
        {
            await ReloadAsync(ct);
            foreach (var provider in _registry.ByName.Values)
                if (provider.Kind != ProviderKind.Echo && Active(provider.Name).Count == 0) LogNoKey(provider.Name);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogReloadFailed(ex);
        }
    }

    private async Task FlushLastUsedQuietlyAsync(CancellationToken ct)
    {
        var ids = new List<Guid>();
        var times = new List<DateTimeOffset>();
        var flushed = new List<(ProviderKey Key, long Ticks)>();
        foreach (var key in _vaultKeys.Values)
        {
            var used = Volatile.Read(ref key.LastUsedTicks);
            if (used <= key.FlushedTicks) continue;
            ids.Add(key.Id!.Value);
            times.Add(new DateTimeOffset(used, TimeSpan.Zero));
            flushed.Add((key, used));
        }
        if (ids.Count == 0) return;
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(ct);
            await using var update = new NpgsqlCommand(
                "update provider_keys k set last_used_at = greatest(k.last_used_at, u.at) from unnest($1::uuid[], $2::timestamptz[]) as u(id, at) where k.id = u.id",
                connection);
            update.Parameters.Add(new() { Value = ids.ToArray() });
            update.Parameters.Add(new() { Value = times.ToArray() });
            await update.ExecuteNonQueryAsync(ct);
            foreach (var (key, ticks) in flushed) key.FlushedTicks = ticks;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogReloadFailed(ex);
        }
    }

    /// <summary>Persists a rejection: the row disabled (once, whoever gets there first), an audit entry, an e-mail to each admin, a notice to every instance.</summary>
    private async Task DisableQuietlyAsync(ProviderKey key, int status, CancellationToken ct)
    {
        try
        {
            await using var scope = _scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var now = _clock.GetUtcNow();
            var error = $"HTTP {status} from the provider: the key was refused";
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            if (key.Id is { } id)
            {
                var changed = await db.Set<ProviderKeyRow>().Where(k => k.Id == id && k.Status == ProviderKeyStatus.Active)
                    .ExecuteUpdateAsync(s => s.SetProperty(k => k.Status, ProviderKeyStatus.Disabled).SetProperty(k => k.DisabledAt, now)
                        .SetProperty(k => k.LastErrorAt, now).SetProperty(k => k.LastError, error), ct);
                if (changed == 0) return;   // another instance got there first and told the admins
                db.Set<AuditEntry>().Add(new AuditEntry
                {
                    At = now, Actor = "gateway", Action = "provider-key.disable", Target = $"provider-key:{id}",
                    InstanceId = scope.ServiceProvider.GetRequiredService<InstanceRegistry>().InstanceId,
                    Before = $$"""{"status":"{{ProviderKeyStatus.Active}}"}""", After = $$"""{"status":"{{ProviderKeyStatus.Disabled}}"}""",
                    Reason = error,
                });
            }
            var admins = await db.Users.AsNoTracking()
                .Where(u => u.Email != null && db.UserRoles.Any(ur => ur.UserId == u.Id && db.Roles.Any(r => r.Id == ur.RoleId && r.Name == Roles.Admin)))
                .Select(u => new { u.Id, Email = u.Email! }).ToListAsync(ct);
            var outbox = scope.ServiceProvider.GetRequiredService<EmailOutbox>();
            var content = ProviderKeyEmails.KeyDisabled(key, status,
                AccountLinks.ForJob(scope.ServiceProvider.GetRequiredService<IOptions<EmailOptions>>().Value, "/Admin/ProviderKeys"));
            foreach (var admin in admins) outbox.Enqueue(admin.Email, content, admin.Id);
            await db.SaveChangesAsync(ct);
            await CacheNotifications.PublishAsync((NpgsqlConnection)db.Database.GetDbConnection(),
                (NpgsqlTransaction)transaction.GetDbTransaction(), Notice, ct);
            await transaction.CommitAsync(ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or DbUpdateException)
        {
            LogDisableFailed(ex, key.Provider);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} refused key {KeyId} (…{Last4}) with HTTP {Status}; it is disabled")]
    private partial void LogKeyRejected(string provider, string keyId, string last4, int status);

    [LoggerMessage(Level = LogLevel.Error, Message = "Provider {Provider} key {KeyId} cannot be opened: {Reason}")]
    private partial void LogKeyUnreadable(string provider, Guid keyId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} has no usable key (no Providers__X__ApiKey and no active key in the vault); its routes are skipped")]
    private partial void LogNoKey(string provider);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider keys could not be read or written; keeping the keys in memory")]
    private partial void LogReloadFailed(Exception ex);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not record the disabling of a {Provider} key")]
    private partial void LogDisableFailed(Exception ex, string provider);
}

public static class ProviderKeyEmails
{
    public static EmailContent KeyDisabled(ProviderKey key, int status, string pageUrl) =>
        EmailTemplates.Build("provider-key-disabled",
            $"AiGate: a {key.Provider} key was refused and disabled",
            $"A {key.Provider} key was disabled",
            [$"The provider \"{key.Provider}\" answered HTTP {status} to the key \"{key.Label}\" (ending in {key.Last4}), so AiGate stopped using it.",
             key.Id is null
                 ? "It is the key from configuration (Providers__" + key.Provider + "__ApiKey): replace it there, or add a key on the provider keys page."
                 : "Calls go on with the provider's other keys, if it has any. Add a new key, or re-enable this one once it works again, on the provider keys page."],
            ("Open the provider keys page", pageUrl),
            "You got this because you are an AiGate admin.");
}
