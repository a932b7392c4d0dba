using AiGate.Web.Features.Credits;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;
using NpgsqlTypes;

namespace AiGate.Web.Features.Billing;

/// <summary>What an event says about a subscription. <see cref="CancelAtPeriodEnd"/> null leaves the stored value.</summary>
public sealed record SubscriptionState(string PlanId, string? SubscriptionId, string? Status, DateTimeOffset? PeriodEnd, bool? CancelAtPeriodEnd,
    bool ClearPeriodEnd = false);

/// <summary>A fulfilled payment, locked for a refund or dispute.</summary>
public sealed record PaymentRow(string Id, Guid UserId, long AmountCents, long CreditedMicros, long ClawedBackMicros);

/// <summary>
/// Reads and writes of <c>billing_accounts</c> and <c>stripe_payments</c> inside a billing transaction.
/// Plan changes publish <c>owner:{id}</c> so every instance's key cache reloads the account's plan (rate limits).
/// </summary>
public sealed class BillingAccounts(IOptions<BillingOptions> billing)
{
    /// <summary>The AiGate account (organization) behind a Stripe customer, else the account id we put in the object's metadata (if it exists).</summary>
    public async Task<Guid?> ResolveUserAsync(BillingTransaction tx, string? customerId, string? userIdFromMetadata, CancellationToken ct)
    {
        if (customerId is not null)
        {
            await using var byCustomer = tx.Command("select user_id from billing_accounts where stripe_customer_id = $1", customerId);
            if (await byCustomer.ExecuteScalarAsync(ct) is Guid found) return found;
        }
        if (!Guid.TryParse(userIdFromMetadata, out var userId)) return null;
        // The account is an organization (a personal one's id is its user's): a team's id is in no users row.
        await using var exists = tx.Command("select 1 from organizations where id = $1", userId);
        if (await exists.ExecuteScalarAsync(ct) is null) return null;
        await EnsureAsync(tx, userId, ct);
        if (customerId is not null)
        {
            await using var link = tx.Command("update billing_accounts set stripe_customer_id = $2, updated_at = now() where user_id = $1 and stripe_customer_id is null",
                userId, customerId);
            await link.ExecuteNonQueryAsync(ct);
        }
        return userId;
    }

    public async Task EnsureAsync(BillingTransaction tx, Guid userId, CancellationToken ct)
    {
        await using var command = tx.Command("""
            insert into billing_accounts (user_id, plan_id, cancel_at_period_end, state_as_of, dunning_step, updated_at)
            values ($1, $2, false, 0, 0, now()) on conflict (user_id) do nothing
            """, userId, billing.Value.FreePlan.Id);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Applies the state when the event is at least as new as the newest applied so far; false when it is older.</summary>
    public async Task<bool> ApplySubscriptionStateAsync(BillingTransaction tx, Guid userId, long eventCreated, SubscriptionState s, CancellationToken ct)
    {
        await using var command = tx.Command("""
            update billing_accounts set
                plan_id = $3,
                subscription_id = coalesce($4, subscription_id),
                subscription_status = coalesce($5, subscription_status),
                current_period_end = case when $8 then null else coalesce($6, current_period_end) end,
                cancel_at_period_end = coalesce($7, cancel_at_period_end),
                state_as_of = $2,
                updated_at = now()
            where user_id = $1 and state_as_of <= $2
            """, userId, eventCreated, s.PlanId, s.SubscriptionId, s.Status, s.PeriodEnd, s.CancelAtPeriodEnd, s.ClearPeriodEnd);
        command.Parameters[3].NpgsqlDbType = NpgsqlDbType.Varchar;
        command.Parameters[4].NpgsqlDbType = NpgsqlDbType.Varchar;
        command.Parameters[5].NpgsqlDbType = NpgsqlDbType.TimestampTz;
        command.Parameters[6].NpgsqlDbType = NpgsqlDbType.Boolean;
        var applied = await command.ExecuteNonQueryAsync(ct) == 1;
        if (applied) await CacheNotifications.PublishAsync(tx.Connection, tx.Transaction, $"owner:{userId}", ct);
        return applied;
    }

    public async Task MarkPastDueAsync(BillingTransaction tx, Guid userId, long eventCreated, CancellationToken ct)
    {
        await using var command = tx.Command("""
            update billing_accounts set
                -- A new past-due episode starts the dunning sequence (its day-0 e-mail is due now); a further
                -- failed attempt during the episode changes nothing.
                dunning_step = case when past_due_since is null then 0 else dunning_step end,
                dunning_next_at = case when past_due_since is null then now() else dunning_next_at end,
                past_due_since = coalesce(past_due_since, now()),
                subscription_status = case when state_as_of <= $2 then 'past_due' else subscription_status end, updated_at = now()
            where user_id = $1
            """, userId, eventCreated);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task ClearPastDueAsync(BillingTransaction tx, Guid userId, CancellationToken ct)
    {
        await using var command = tx.Command("update billing_accounts set past_due_since = null, dunning_next_at = null, dunning_step = 0, updated_at = now() where user_id = $1", userId);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task FlagDisputedAsync(BillingTransaction tx, Guid userId, CancellationToken ct)
    {
        await EnsureAsync(tx, userId, ct);
        await using var command = tx.Command("update billing_accounts set disputed_at = coalesce(disputed_at, now()), updated_at = now() where user_id = $1", userId);
        await command.ExecuteNonQueryAsync(ct);
        // The key cache drops the owner's keys on every instance: a disputed account's keys stop working within seconds.
        await CacheNotifications.PublishAsync(tx.Connection, tx.Transaction, $"owner:{userId}", ct);
    }

    /// <summary>
    /// False when the account (an organization, issue 17) no longer exists (it was deleted; its payments are kept, without a
    /// foreign key). Otherwise the row is locked against deletion until the transaction ends, so the balance and billing rows
    /// written next still have their organization.
    /// </summary>
    public async Task<bool> LockUserAsync(BillingTransaction tx, Guid userId, CancellationToken ct)
    {
        await using var command = tx.Command("select 1 from organizations where id = $1 for key share", userId);
        return await command.ExecuteScalarAsync(ct) is not null;
    }

    /// <summary>Records on a deleted account's payment how much of its credit Stripe returned (a refund, a dispute); no ledger entry.</summary>
    public static async Task RecordOnDeletedAccountAsync(BillingTransaction tx, PaymentRow payment, long targetMicros, CancellationToken ct)
    {
        await using var update = tx.Command("update stripe_payments set clawed_back_micros = greatest(clawed_back_micros, $2) where id = $1", payment.Id, targetMicros);
        await update.ExecuteNonQueryAsync(ct);
    }

    public async Task<PaymentRow?> FindPaymentForUpdateAsync(BillingTransaction tx, string paymentIntentId, CancellationToken ct)
    {
        await using var command = tx.Command(
            "select id, user_id, amount_cents, credited_micros, clawed_back_micros from stripe_payments where payment_intent_id = $1 for update", paymentIntentId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new PaymentRow(reader.GetString(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4))
            : null;
    }

    /// <summary>
    /// A plan payment found through its invoice (Stripe named the invoice's payment intent only when asked): records the
    /// payment intent on it for the next refund or dispute, and locks it as <see cref="FindPaymentForUpdateAsync"/> does.
    /// </summary>
    public async Task<PaymentRow?> FindInvoicePaymentForUpdateAsync(BillingTransaction tx, string invoiceId, string paymentIntentId, CancellationToken ct)
    {
        await using var command = tx.Command("""
            update stripe_payments set payment_intent_id = coalesce(payment_intent_id, $2) where id = $1
            returning id, user_id, amount_cents, credited_micros, clawed_back_micros
            """, invoiceId, paymentIntentId);
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new PaymentRow(reader.GetString(0), reader.GetGuid(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4))
            : null;
    }

    /// <summary>
    /// Takes back credit until <paramref name="targetMicros"/> of the payment's credit has been taken in all:
    /// what the available balance covers as one refund entry, the rest as a second entry that leaves the
    /// balance negative — debt the billing and dashboard pages show, and which blocks API calls until repaid.
    /// </summary>
    public async Task<(long Taken, long Debt)> ClawBackAsync(BillingTransaction tx, PaymentRow payment, long targetMicros, string reference, string key, CancellationToken ct)
    {
        var delta = targetMicros - payment.ClawedBackMicros;
        if (delta <= 0) return (0, 0);

        long available;
        await using (var balance = tx.Command("select balance_micros - held_micros from credit_accounts where user_id = $1 for update", payment.UserId))
            available = await balance.ExecuteScalarAsync(ct) is long a ? Math.Max(0, a) : 0;
        var taken = Math.Min(delta, available);
        var debt = delta - taken;
        if (taken > 0)
            await Ledger.PostAsync(tx.Connection, tx.Transaction, payment.UserId, LedgerKinds.Refund, -taken, Trim($"{reference}: credit taken back"), key, ct);
        if (debt > 0)
            await Ledger.PostAsync(tx.Connection, tx.Transaction, payment.UserId, LedgerKinds.Refund, -debt,
                Trim($"{reference}: already spent, owed"), key + ":debt", ct);

        await using var update = tx.Command("update stripe_payments set clawed_back_micros = $2 where id = $1", payment.Id, targetMicros);
        await update.ExecuteNonQueryAsync(ct);
        return (taken, debt);
    }

    private static string Trim(string s) => s.Length > 200 ? s[..200] : s;
}
