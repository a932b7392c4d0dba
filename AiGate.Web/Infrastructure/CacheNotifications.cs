using Npgsql;

namespace AiGate.Web.Infrastructure;

/// <summary>
/// Cross-instance cache invalidation over PostgreSQL LISTEN/NOTIFY. A writer calls
/// <see cref="PublishAsync"/> inside its transaction (PostgreSQL delivers the notice only when the
/// transaction commits); every instance's listener hands the payload to the subscribers, which
/// evict what it names. If the listening connection drops, notices may have been missed, so on
/// every (re)connect subscribers are told to clear everything; short TTLs cover the gap.
/// </summary>
public sealed partial class CacheNotifications(NpgsqlDataSource dataSource, ILogger<CacheNotifications> logger) : BackgroundService
{
    public const string Channel = "aigate_cache";
    private readonly List<Action<string?>> _subscribers = [];

    /// <summary>Registers a callback: the payload, or null for "clear everything".</summary>
    public void Subscribe(Action<string?> onNotice)
    {
        lock (_subscribers) _subscribers.Add(onNotice);
    }

    public static async Task PublishAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string payload, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"select pg_notify('{Channel}', $1)", connection, transaction);
        command.Parameters.Add(new() { Value = payload });
        await command.ExecuteNonQueryAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => Dispatch(e.Payload);
                await using (var listen = new NpgsqlCommand($"listen {Channel}", connection))
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                Dispatch(null);
                delay = TimeSpan.FromMilliseconds(200);
                while (!stoppingToken.IsCancellationRequested)
                    await connection.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
            {
                LogListenFailed(ex, delay.TotalMilliseconds);
                Dispatch(null);
                await Task.Delay(delay, stoppingToken);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 10_000));
            }
        }
    }

    private void Dispatch(string? payload)
    {
        Action<string?>[] subscribers;
        lock (_subscribers) subscribers = [.. _subscribers];
        foreach (var subscriber in subscribers) subscriber(payload);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cache notification listener lost its connection; retrying in {DelayMs} ms")]
    private partial void LogListenFailed(Exception ex, double delayMs);
}
