using System.Collections.Concurrent;
using System.Collections.Frozen;
using AiGate.Web.Data;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using AiGate.Web.Features.Vault;
using AiGate.Web.Infrastructure;
using Npgsql;

namespace AiGate.Web.Features.Byok;

/// <summary>One of an account's own provider keys, opened. The secret never leaves the process.</summary>
public sealed class UserKey(Guid id, Guid userId, string kind, string label, string last4, string secret, bool fallbackToPlatform, Provider? custom)
{
    public Guid Id { get; } = id;
    public Guid UserId { get; } = userId;
    public string Kind { get; } = kind;
    public string Label { get; } = label;
    public string Last4 { get; } = last4;
    internal string Secret { get; } = secret;
    public bool FallbackToPlatform { get; } = fallbackToPlatform;
    /// <summary>For a custom endpoint: the provider to call (its base URL, the guarded connection pool).</summary>
    public Provider? Custom { get; } = custom;

    public override string ToString() => $"{Kind} key {Id} (…{Last4})";
}

/// <summary>An account's opened keys: one per provider kind at most, and its custom endpoints by label.</summary>
public sealed class AccountKeys(UserKey? openAi, UserKey? anthropic, UserKey? gemini, FrozenDictionary<string, UserKey> custom)
{
    public static readonly AccountKeys None = new(null, null, null, FrozenDictionary<string, UserKey>.Empty);

    public FrozenDictionary<string, UserKey> Custom { get; } = custom;
    public bool IsEmpty => openAi is null && anthropic is null && gemini is null && Custom.Count == 0;

    /// <summary>Every key of the account (for the page's test button; not on the call's path).</summary>
    public IEnumerable<UserKey> All => new[] { openAi, anthropic, gemini }.OfType<UserKey>().Concat(Custom.Values);

    /// <summary>The user's key for a platform provider's route, or null (the platform's keys serve it).</summary>
    public UserKey? For(Provider provider) => AcceptsUserKeys(provider)
        ? provider.Kind switch { ProviderKind.OpenAi => openAi, ProviderKind.Anthropic => anthropic, ProviderKind.Gemini => gemini, _ => null }
        : null;

    /// <summary>
    /// Whether a configured provider is the real service of its kind, so a user's key of that kind may go to it: the
    /// provider named after its kind (<c>openai</c>, <c>anthropic</c>, <c>gemini</c>) or one on the service's own host.
    /// A provider of kind openai pointing at another OpenAI-compatible service never sees a user's OpenAI key.
    /// </summary>
    public static bool AcceptsUserKeys(Provider provider) => provider.Kind switch
    {
        ProviderKind.OpenAi => provider.Name == ByokKinds.OpenAi || provider.BaseUrl.Host == "api.openai.com",
        ProviderKind.Anthropic => provider.Name == ByokKinds.Anthropic || provider.BaseUrl.Host == "api.anthropic.com",
        ProviderKind.Gemini => provider.Name == ByokKinds.Gemini || provider.BaseUrl.Host == "generativelanguage.googleapis.com",
        _ => false,
    };
}

/// <summary>
/// The accounts' own provider keys, opened and kept in memory so a BYOK call costs no database round trip in the steady
/// state. At start (and every minute) the ids of accounts that have any key are read; an account's keys are read and
/// opened with the account's DEK on its first call, then served from memory. A change on the page publishes
/// <c>byok:{user id}</c> (<see cref="CacheNotifications"/>), and every instance drops that account's keys within a second
/// or so. A key the provider refuses gets its "last error" written here, off the call's path; it is never disabled.
/// </summary>
public sealed partial class ByokKeys : BackgroundService
{
    public const string NoticePrefix = "byok:";
    private static readonly TimeSpan ReloadInterval = TimeSpan.FromMinutes(1);

    private readonly SecretVault _vault;
    private readonly NpgsqlDataSource _dataSource;
    private readonly DatabaseDeadline _database;
    private readonly CacheNotifications _notifications;
    private readonly TimeProvider _clock;
    private readonly ILogger<ByokKeys> _logger;
    private readonly HttpMessageInvoker _guarded;
    private readonly ConcurrentDictionary<Guid, byte> _owners = new();
    private readonly ConcurrentDictionary<Guid, Task<AccountKeys>> _accounts = new();
    private readonly ConcurrentQueue<(UserKey Key, int Status)> _refusals = new();
    private readonly SemaphoreSlim _wake = new(0);
    private volatile bool _ownersLoaded;
    private int _reloadRequested;

    public ByokKeys(SecretVault vault, NpgsqlDataSource dataSource, CacheNotifications notifications, OutboundAddressGuard guard, TimeProvider clock,
        DatabaseDeadline database, ILogger<ByokKeys> logger)
    {
        _database = database;
        _vault = vault;
        _dataSource = dataSource;
        _notifications = notifications;
        _clock = clock;
        _logger = logger;
        _guarded = new HttpMessageInvoker(guard.CreateHandler(), disposeHandler: true);
    }

    /// <summary>The connection pool for custom endpoints (and key tests): every connection passes <see cref="OutboundAddressGuard"/>.</summary>
    public HttpMessageInvoker Guarded => _guarded;

    /// <summary>The account's keys (none: <see cref="AccountKeys.None"/>); from memory after the account's first call.</summary>
    public async ValueTask<AccountKeys> ForAccountAsync(Guid userId, CancellationToken ct)
    {
        if (_ownersLoaded && !_owners.ContainsKey(userId)) return AccountKeys.None;
        if (_accounts.TryGetValue(userId, out var cached) && cached.IsCompletedSuccessfully) return cached.Result;
        var loading = _accounts.GetOrAdd(userId, static (id, self) => self.LoadAsync(id), this);
        try
        {
            // Within the API's deadline for the database; a load that outlives it still fills the cache when it ends.
            return await _database.RunAsync(static (task, _) => task, loading, ct);
        }
        catch (Exception) when (loading.IsFaulted)
        {
            _accounts.TryRemove(new KeyValuePair<Guid, Task<AccountKeys>>(userId, loading));
            throw;
        }
    }

    /// <summary>Forgets an account's keys on this instance (the page calls it before its notice reaches every instance).</summary>
    public void Forget(Guid userId)
    {
        _owners[userId] = 0;
        _accounts.TryRemove(userId, out _);
    }

    /// <summary>The provider refused the user's key: record it on the key's row (for the page), off the call's path.</summary>
    public void Refused(UserKey key, int status)
    {
        LogUserKeyRefused(key.Kind, key.Id, key.UserId, status);
        _refusals.Enqueue((key, status));
        _wake.Release();
    }

    public static Task PublishAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid userId, CancellationToken ct) =>
        CacheNotifications.PublishAsync(connection, transaction, NoticePrefix + userId.ToString("D"), ct);

    private async Task<AccountKeys> LoadAsync(Guid userId)
    {
        var rows = new List<(Guid Id, string Kind, string Label, string? BaseUrl, byte[] Secret, int Version, string Last4, bool Fallback)>();
        await using (var connection = await _dataSource.OpenConnectionAsync())
        await using (var select = new NpgsqlCommand(
            "select id, kind, label, base_url, secret, key_version, last4, fallback_to_platform from user_provider_keys where user_id = $1 order by created_at, id",
            connection))
        {
            select.Parameters.Add(new() { Value = userId });
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                rows.Add((reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3), (byte[])reader[4],
                    reader.GetInt32(5), reader.GetString(6), reader.GetBoolean(7)));
        }
        if (rows.Count == 0) return AccountKeys.None;
        UserKey? openAi = null, anthropic = null, gemini = null;
        var custom = new Dictionary<string, UserKey>(StringComparer.Ordinal);
        var owner = SecretVault.AccountOwner(userId);
        foreach (var row in rows)
        {
            var secret = await _vault.OpenAsync(owner, UserProviderKey.Purpose, row.Id.ToString(), new SealedSecret(row.Secret, row.Version), CancellationToken.None);
            switch (row.Kind)
            {
                case ByokKinds.OpenAi: openAi = new UserKey(row.Id, userId, row.Kind, row.Label, row.Last4, secret, row.Fallback, null); break;
                case ByokKinds.Anthropic: anthropic = new UserKey(row.Id, userId, row.Kind, row.Label, row.Last4, secret, row.Fallback, null); break;
                case ByokKinds.Gemini: gemini = new UserKey(row.Id, userId, row.Kind, row.Label, row.Last4, secret, row.Fallback, null); break;
                case ByokKinds.Custom when row.BaseUrl is not null && Uri.TryCreate(row.BaseUrl, UriKind.Absolute, out var baseUrl):
                    custom[row.Label] = new UserKey(row.Id, userId, row.Kind, row.Label, row.Last4, secret, false, CustomProvider(row.Label, baseUrl));
                    break;
            }
        }
        return new AccountKeys(openAi, anthropic, gemini, custom.ToFrozenDictionary(StringComparer.Ordinal));
    }

    /// <summary>An OpenAI-compatible provider at a user's base URL, reached only through the guarded pool.</summary>
    public Provider CustomProvider(string label, Uri baseUrl) => new()
    {
        Name = CustomModels.Prefix + label, Kind = ProviderKind.OpenAi, BaseUrl = baseUrl, ApiKey = null,
        Timeout = TimeSpan.FromSeconds(60), NonStreamTimeout = TimeSpan.FromMinutes(10), StreamIdleTimeout = TimeSpan.FromSeconds(60),
        Adapter = OpenAiAdapter.Instance, Http = _guarded, Breaker = ProviderRegistry.BuildBreaker(),
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _notifications.Subscribe(payload =>
        {
            if (payload is null)
            {
                Interlocked.Exchange(ref _reloadRequested, 1);
                _wake.Release();
            }
            else if (payload.StartsWith(NoticePrefix, StringComparison.Ordinal) && Guid.TryParse(payload.AsSpan(NoticePrefix.Length), out var userId))
                Forget(userId);
        });
        var lastReload = long.MinValue;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (Interlocked.Exchange(ref _reloadRequested, 0) == 1 || lastReload == long.MinValue || _clock.GetElapsedTime(lastReload) > ReloadInterval)
                {
                    await ReloadOwnersQuietlyAsync(stoppingToken);
                    lastReload = _clock.GetTimestamp();
                }
                while (_refusals.TryDequeue(out var refusal)) await RecordRefusalQuietlyAsync(refusal.Key, refusal.Status, stoppingToken);
                await _wake.WaitAsync(TimeSpan.FromSeconds(5), stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    /// <summary>Which accounts have keys, and the opened keys dropped so a missed notice is healed within a minute.</summary>
    private async Task ReloadOwnersQuietlyAsync(CancellationToken ct)
    {
        try
        {
            var owners = new HashSet<Guid>();
            await using (var connection = await _dataSource.OpenConnectionAsync(ct))
            await using (var select = new NpgsqlCommand("select distinct user_id from user_provider_keys", connection))
            await using (var reader = await select.ExecuteReaderAsync(ct))
                while (await reader.ReadAsync(ct)) owners.Add(reader.GetGuid(0));
            _accounts.Clear();
            foreach (var id in _owners.Keys) if (!owners.Contains(id)) _owners.TryRemove(id, out _);
            foreach (var id in owners) _owners[id] = 0;
            _ownersLoaded = true;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogReloadFailed(ex);
        }
    }

    private async Task RecordRefusalQuietlyAsync(UserKey key, int status, CancellationToken ct)
    {
        try
        {
            await using var command = _dataSource.CreateCommand(
                "update user_provider_keys set last_error_at = $2, last_error = $3 where id = $1 and user_id = $4");
            command.Parameters.Add(new() { Value = key.Id });
            command.Parameters.Add(new() { Value = _clock.GetUtcNow() });
            command.Parameters.Add(new() { Value = $"HTTP {status} from the provider: the key was refused" });
            command.Parameters.Add(new() { Value = key.UserId });
            await command.ExecuteNonQueryAsync(ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogReloadFailed(ex);
        }
    }

    public override void Dispose()
    {
        _guarded.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "The provider refused the {Kind} key {KeyId} of account {UserId} with HTTP {Status}")]
    private partial void LogUserKeyRefused(string kind, Guid keyId, Guid userId, int status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Users' provider keys could not be read or written; keeping what is in memory")]
    private partial void LogReloadFailed(Exception ex);
}
