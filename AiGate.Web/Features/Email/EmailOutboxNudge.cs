using System.Data.Common;
using System.Runtime.CompilerServices;
using AiGate.Web.Features.Jobs;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Storage;
using Hangfire;

namespace AiGate.Web.Features.Email;

/// <summary>
/// Enqueues a run of the outbox job as soon as an enqueued e-mail is committed, so mail leaves within a
/// second rather than at the next poll. An EF interceptor: it notices outbox rows being saved and
/// fires after the save (no transaction) or after the surrounding transaction commits. A failed
/// trigger is only logged: the job's schedule picks the row up anyway.
/// </summary>
public sealed partial class EmailOutboxNudge(IServiceProvider services, IConfiguration configuration, ILogger<EmailOutboxNudge> logger)
    : DbTransactionInterceptor, ISaveChangesInterceptor
{
    private readonly bool _enabled = configuration.GetValue($"{JobsOptions.Section}:{nameof(JobsOptions.SchedulerEnabled)}", true);
    /// <summary>Transactions that saved outbox rows and are not committed yet.</summary>
    private readonly ConditionalWeakTable<DbTransaction, object> _pending = [];
    private readonly ConditionalWeakTable<DbContext, object> _saving = [];

    public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        if (_enabled && eventData.Context is { } context && context.ChangeTracker.Entries<OutboxEmail>().Any(e => e.State == EntityState.Added))
            _saving.AddOrUpdate(context, true);
        return ValueTask.FromResult(result);
    }

    public ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && _saving.Remove(context))
        {
            if (context.Database.CurrentTransaction?.GetDbTransaction() is { } transaction)
                _pending.AddOrUpdate(transaction, true);
            else
                Trigger();
        }
        return ValueTask.FromResult(result);
    }

    public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (_pending.Remove(transaction)) Trigger();
        return Task.CompletedTask;
    }

    public override Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        _pending.Remove(transaction);
        return Task.CompletedTask;
    }

    private void Trigger()
    {
        try
        {
            // Resolved here, not in the constructor: the interceptor is built with the first DbContext, before
            // anything else needs Hangfire. The job's own lock and claims make an extra run harmless.
            var client = services.GetRequiredService<IBackgroundJobClient>();
            client.Enqueue<EmailOutboxJob>(j => j.RunAsync(CancellationToken.None));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogTriggerFailed(ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not enqueue the e-mail outbox job; the schedule will send the mail")]
    private partial void LogTriggerFailed(Exception ex);
}
