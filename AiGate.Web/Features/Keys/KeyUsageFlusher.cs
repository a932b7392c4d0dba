using Npgsql;
using NpgsqlTypes;

namespace AiGate.Web.Features.Keys;

/// <summary>
/// Writes keys' "last used" times every 30 s in one statement, instead of one update per request.
/// Best effort (fails open): a lost flush only makes "last used" a little older.
/// </summary>
public sealed partial class KeyUsageFlusher(ApiKeyCache cache, NpgsqlDataSource dataSource, ILogger<KeyUsageFlusher> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken)) await FlushAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
        await FlushAsync(CancellationToken.None);
    }

    public async Task FlushAsync(CancellationToken ct)
    {
        var used = cache.TakeLastUsed();
        if (used.Count == 0) return;
        try
        {
            await using var command = dataSource.CreateCommand("""
                update api_keys k set last_used_at = greatest(coalesce(k.last_used_at, u.at), u.at)
                from unnest($1::uuid[], $2::timestamptz[]) as u(id, at) where k.id = u.id
                """);
            command.Parameters.Add(new NpgsqlParameter { Value = used.Select(u => u.KeyId).ToArray() });
            command.Parameters.Add(new NpgsqlParameter { Value = used.Select(u => u.At).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            await command.ExecuteNonQueryAsync(ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogFlushFailed(ex, used.Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record last use of {Count} keys")]
    private partial void LogFlushFailed(Exception ex, int count);
}
