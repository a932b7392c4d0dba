using Hangfire;
using Hangfire.Client;
using Hangfire.Storage;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Pausing a recurring job, which Hangfire's dashboard lacks: the paused ids are a set in Hangfire's own storage
/// (so every instance sees them), and this client filter cancels each fire of a paused job as the recurring
/// scheduler creates it (the schedule moves on; nothing piles up). Triggering it by hand still runs it.
/// </summary>
public sealed class JobPauses(JobStorage storage) : IClientFilter
{
    private const string Set = "aigate:paused-recurring-jobs";

    public IReadOnlySet<string> Paused()
    {
        using var connection = storage.GetConnection();
        return connection.GetAllItemsFromSet(Set);
    }

    public void Pause(string recurringJobId) => Write(t => t.AddToSet(Set, recurringJobId));

    public void Resume(string recurringJobId) => Write(t => t.RemoveFromSet(Set, recurringJobId));

    private void Write(Action<IWriteOnlyTransaction> change)
    {
        using var connection = storage.GetConnection();
        using var transaction = connection.CreateWriteTransaction();
        change(transaction);
        transaction.Commit();
    }

    /// <summary>
    /// Set while an admin's request triggers a job (the dashboard's "Trigger now" runs in the request): such a
    /// fire runs even if the job is paused. The scheduler's fires come from Hangfire's own threads, where it is never set.
    /// </summary>
    public static readonly AsyncLocal<bool> ManualTrigger = new();

    public void OnCreating(CreatingContext context)
    {
        if (!ManualTrigger.Value && context.Parameters.TryGetValue("RecurringJobId", out var id) && id is string recurringJobId
            && context.Connection.GetAllItemsFromSet(Set).Contains(recurringJobId))
            context.Canceled = true;
    }

    public void OnCreated(CreatedContext context) { }
}
