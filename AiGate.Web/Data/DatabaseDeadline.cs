using System.ComponentModel.DataAnnotations;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Data;

public sealed class DatabaseOptions
{
    public const string Section = "Database";

    /// <summary>
    /// The longest an API call waits for PostgreSQL (a key lookup, a lease top-up) before it is answered 503 (RELIABILITY
    /// F10: within 2 s, also when the database hangs rather than refuses). Npgsql's own timeouts are 15 s to connect and
    /// 30 s per command, made for pages and jobs.
    /// </summary>
    [Range(100, 30_000)]
    public int ApiTimeoutMs { get; set; } = 1000;
}

/// <summary>
/// The API's bound on waiting for PostgreSQL. A frozen server (stopped, swapped out, a network that drops packets) keeps
/// its sockets open and answers nothing, so without a deadline each call that needs the database waits out Npgsql's
/// connect timeout. Calls get <see cref="DatabaseOptions.ApiTimeoutMs"/>; after one failure the database counts as down
/// for a second, so the calls behind it fail at once (known keys and held leases keep serving) instead of each waiting
/// the full deadline; the first call after that second tries again, so recovery needs no restart.
/// </summary>
public sealed class DatabaseDeadline(IOptions<DatabaseOptions> options, TimeProvider clock)
{
    private static readonly TimeSpan DownFor = TimeSpan.FromSeconds(1);
    private readonly TimeSpan _timeout = TimeSpan.FromMilliseconds(options.Value.ApiTimeoutMs);
    private long _failedAt = long.MinValue;

    /// <summary>A call failed within the last second: do not wait on the database again yet.</summary>
    public bool Down
    {
        get
        {
            var failedAt = Interlocked.Read(ref _failedAt);
            return failedAt != long.MinValue && clock.GetElapsedTime(failedAt) < DownFor;
        }
    }

    /// <summary>
    /// Runs one database call of an API request within the deadline. Throws <see cref="DatabaseUnavailableException"/>
    /// (a 503) when the database counts as down, did not answer in time or could not be reached; anything else
    /// (a query PostgreSQL refused: a bug) as it came.
    /// </summary>
    public async Task<T> RunAsync<T, TState>(Func<TState, CancellationToken, Task<T>> call, TState state, CancellationToken aborted)
    {
        if (Down) throw DownError();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        deadline.CancelAfter(_timeout);
        try
        {
            return await Within(call(state, deadline.Token), deadline.Token);
        }
        catch (Exception ex) when (!aborted.IsCancellationRequested && (ex is OperationCanceledException || DatabaseUnavailableException.IsOutage(ex)))
        {
            Failed();
            throw new DatabaseUnavailableException(ex);
        }
    }

    /// <summary>
    /// Waits for <paramref name="running"/> until <paramref name="deadline"/> fires, whether or not Npgsql notices the
    /// token: it does not while it opens a connection to a server that accepted the socket and never answers (that waits
    /// out the connection string's Timeout, 15 s). A call left behind runs on to its own end; its failure is observed here.
    /// </summary>
    public static async Task<T> Within<T>(Task<T> running, CancellationToken deadline)
    {
        try
        {
            return await running.WaitAsync(deadline);
        }
        catch (OperationCanceledException) when (!running.IsCompleted)
        {
            _ = running.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>The database could not be reached for a call: it counts as down for a second.</summary>
    private void Failed() => Interlocked.Exchange(ref _failedAt, clock.GetTimestamp());

    /// <summary>A fast failure while the database counts as down.</summary>
    private static DatabaseUnavailableException DownError() =>
        new(new TimeoutException("PostgreSQL did not answer a call within its deadline a moment ago."));
}
