using AiGate.Web.Infrastructure;
using Npgsql;

namespace AiGate.Web.Features.Credits;

/// <summary>A user's balance as the database has it.</summary>
public sealed record CreditBalance(long BalanceMicros, long HeldMicros)
{
    public long AvailableMicros => BalanceMicros - HeldMicros;
}

/// <summary>
/// The only way a balance changes outside metering: one ledger entry and the matching balance
/// change, in one statement (so in one transaction). An idempotency key makes a repeated post
/// (a redelivered webhook, a retried command) land once. Metering posts its usage entries in
/// batches through <see cref="UsageWriter"/>, with the same rule. Purchases and refunds also tell every instance
/// that the owner's usage tier may have changed.
/// </summary>
public sealed class Ledger(NpgsqlDataSource dataSource)
{
    /// <summary>Posts an entry; false when its idempotency key was already used (nothing changed).</summary>
    public async Task<bool> PostAsync(Guid userId, string kind, long amountMicros, string? reference, string? idempotencyKey, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        return await PostAsync(connection, null, userId, kind, amountMicros, reference, idempotencyKey, ct);
    }

    /// <summary>Posts inside the caller's transaction (a Stripe event and its credit commit together).</summary>
    public static async Task<bool> PostAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid userId, string kind,
        long amountMicros, string? reference, string? idempotencyKey, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("""
            with entry as (
                insert into ledger_entries (user_id, kind, amount_micros, reference, idempotency_key, created_at)
                values ($1, $2, $3, $4, $5, now())
                on conflict (idempotency_key) do nothing
                returning amount_micros)
            insert into credit_accounts (user_id, balance_micros, held_micros, updated_at)
            select $1, amount_micros, 0, now() from entry
            on conflict (user_id) do update
                set balance_micros = credit_accounts.balance_micros + excluded.balance_micros, updated_at = excluded.updated_at
            returning 1
            """, connection, transaction);
        command.Parameters.Add(new() { Value = userId });
        command.Parameters.Add(new() { Value = kind });
        command.Parameters.Add(new() { Value = amountMicros });
        command.Parameters.Add(new() { Value = (object?)reference ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Varchar });
        command.Parameters.Add(new() { Value = (object?)idempotencyKey ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Varchar });
        if (await command.ExecuteScalarAsync(ct) is null) return false;
        // A payment or its refund changes what the user has paid in total, hence their usage tier: every instance's
        // key cache reloads the account's rate limits when this commits (issue 13).
        if (kind is LedgerKinds.Purchase or LedgerKinds.Refund)
            await CacheNotifications.PublishAsync(connection, transaction, $"owner:{userId}", ct);
        return true;
    }

    public async Task<CreditBalance> GetBalanceAsync(Guid userId, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("select balance_micros, held_micros from credit_accounts where user_id = $1");
        command.Parameters.Add(new() { Value = userId });
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? new CreditBalance(reader.GetInt64(0), reader.GetInt64(1)) : new CreditBalance(0, 0);
    }
}
