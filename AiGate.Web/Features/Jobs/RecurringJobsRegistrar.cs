using Hangfire;
using Hangfire.Storage;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Puts every declared <see cref="RecurringJobSpec"/> into Hangfire's storage once the app has started (add or
/// update: a changed schedule takes effect on deploy) and removes recurring jobs no feature declares any more.
/// In the background, so the instance listens at once even when the database is slow (each update takes the
/// recurring job's distributed lock); retried until it succeeds. Runs only where the server runs, so CLI verbs
/// (and <c>migrate</c> before the schema exists) never touch Hangfire's tables. Every instance doing it is harmless.
/// </summary>
public sealed partial class RecurringJobsRegistrar(IEnumerable<RecurringJobSpec> specs, IRecurringJobManager manager, JobStorage storage,
    ILogger<RecurringJobsRegistrar> logger) : BackgroundService
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();   // off the host's start path
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                Register();
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFailed(ex, RetryDelay.TotalSeconds);
            }
            await Task.Delay(RetryDelay, stoppingToken);
        }
    }

    private void Register()
    {
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            spec.Register(manager, spec);
            declared.Add(spec.Id);
        }
        using var connection = storage.GetConnection();
        foreach (var existing in connection.GetRecurringJobs())
            if (!declared.Contains(existing.Id))
            {
                manager.RemoveIfExists(existing.Id);
                LogRemoved(existing.Id);
            }
        LogRegistered(declared.Count);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered {Count} recurring jobs")]
    private partial void LogRegistered(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed recurring job {JobId}: no feature declares it any more")]
    private partial void LogRemoved(string jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not register the recurring jobs; trying again in {Seconds} s")]
    private partial void LogFailed(Exception ex, double seconds);
}
