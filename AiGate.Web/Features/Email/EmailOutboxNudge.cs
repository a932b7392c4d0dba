using System.Data.Common;
using System.Runtime.CompilerServices;
using AiGate.Web.Features.Jobs;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Storage;
using Quartz;

namespace AiGate.Web.Features.Email;

/// <summary>
/// Triggers the outbox job as soon as an enqueued e-mail is committed, so mail leaves within a
/// second rather than at the next poll. An EF interceptor: it notices outbox rows being saved and
/// fires after the save (no transaction) or after the surrounding transaction commits. A failed
/// trigger is only logged: the job's schedule picks the row up anyway.
/// </summary>
public sealed partial class EmailOutboxNudge(ISchedulerFactory schedulers, IConfiguration configuration, ILogger<EmailOutboxNudge> logger)
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

    public async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && _saving.Remove(context))
        {
            if (context.Database.CurrentTransaction?.GetDbTransaction() is { } transaction)
                _pending.AddOrUpdate(transaction, true);
            else
                await TriggerAsync();
        }
        return result;
    }

    public override async Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        if (_pending.Remove(transaction)) await TriggerAsync();
    }

    public override Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        _pending.Remove(transaction);
        return Task.CompletedTask;
    }

    private async Task TriggerAsync()
    {
        try
        {
            var scheduler = await schedulers.GetScheduler(CancellationToken.None);
            await scheduler.TriggerJob(EmailOutboxJob.Key, CancellationToken.None);
        }
        catch (SchedulerException ex)
        {
            LogTriggerFailed(ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not trigger the e-mail outbox job; the schedule will send the mail")]
    private partial void LogTriggerFailed(Exception ex);
}
