namespace AiGate.Web.Infrastructure;

/// <summary>
/// PostgreSQL could not be reached for something a request needs and nothing known can stand in for it.
/// /api answers it with 503 and Retry-After in OpenAI's envelope (fail closed, RELIABILITY "Database
/// outage"), without an error log per request: the outage is reported by /readyz and the background services.
/// </summary>
public sealed class DatabaseUnavailableException(Exception inner)
    : Exception("The database is unreachable.", inner)
{
    /// <summary>Connection and timeout failures (not a query PostgreSQL refused: that is a bug, a 500).</summary>
    public static bool IsOutage(Exception? ex) => ex switch
    {
        DatabaseUnavailableException => true,
        Npgsql.PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState.StartsWith("57P", StringComparison.Ordinal),
        Npgsql.NpgsqlException or TimeoutException or System.Net.Sockets.SocketException => true,
        InvalidOperationException { InnerException: { } inner } => IsOutage(inner),
        _ => false,
    };
}
