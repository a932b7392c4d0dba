using Hangfire;
using Hangfire.Storage;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Puts every declared <see cref="RecurringJobSpec"/> into Hangfire's storage as the server starts (add or update:
/// a changed schedule takes effect on deploy) and removes recurring jobs no feature declares any more. Runs only
/// where the server runs, so CLI verbs (and <c>migrate</c> before the schema exists) never touch Hangfire's tables.
/// Every instance doing it is harmless: <c>AddOrUpdate</c> takes the recurring job's distributed lock.
/// </summary>
public sealed partial class RecurringJobsRegistrar(IEnumerable<RecurringJobSpec> specs, IRecurringJobManager manager, JobStorage storage,
    ILogger<RecurringJobsRegistrar> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
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
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered {Count} recurring jobs")]
    private partial void LogRegistered(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed recurring job {JobId}: no feature declares it any more")]
    private partial void LogRemoved(string jobId);
}
