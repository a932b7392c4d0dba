using AiGate.Web.Data;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace AiGate.Web.Features.Admin;

/// <summary>What an admin action came to: done, or refused with a message for the admin (nothing changed).</summary>
public sealed record AdminOutcome(bool Done, string Message)
{
    public static AdminOutcome Refused(string message) => new(false, message);
}

/// <summary>
/// The actions of the admin user page (/Admin/Users/{id}). Each one changes its rows, writes its audit row (before →
/// after, with the reason) and, when access changes, publishes <c>owner:{id}</c> or <c>key:{id}</c>, all in one
/// transaction: the audit row exists exactly when the change does, and every instance's key cache reloads the account
/// when it commits. Changes of money and access need a reason. Credit is deducted only from what is available
/// (balance − held): an operator's deduction never creates debt, only refunds and disputes do (billing.md).
/// </summary>
public sealed class AccountActions(AppDbContext db, AuditLog audit, TimeProvider clock)
{
    public const int ReasonMaxLength = 200;

    /// <summary>
    /// Grants (positive) or deducts (negative) credit: a ledger entry (grant or adjustment) and an audit row. Only the
    /// <c>grant-credits</c> verb passes <paramref name="allowDebt"/>: settling refused usage (/Admin/UsageDeadLetters)
    /// charges for calls already served, which may leave a balance below zero as any usage can.
    /// </summary>
    public async Task<AdminOutcome> AdjustCreditAsync(Guid userId, long micros, string? reason, CancellationToken ct, bool allowDebt = false)
    {
        if (CheckReason(reason) is { } refused) return refused;
        if (micros == 0) return AdminOutcome.Refused("Enter a non-zero amount.");
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        if (!await db.Users.AnyAsync(u => u.Id == userId, ct)) return AdminOutcome.Refused("No such user.");
        var (connection, tx) = Npgsql(transaction);
        var before = await LockBalanceAsync(connection, tx, userId, ct);
        if (micros < 0 && !allowDebt && before.AvailableMicros + micros < 0)
            return AdminOutcome.Refused($"Deduct at most the available ${Money.UsdDisplay(Math.Max(0, before.AvailableMicros))}: a deduction never creates debt.");
        await Ledger.PostAsync(connection, tx, userId, micros > 0 ? LedgerKinds.Grant : LedgerKinds.Adjustment, micros, reason!.Trim(), null, ct);
        var after = await LockBalanceAsync(connection, tx, userId, ct);
        var action = micros > 0 ? "credit.grant" : "credit.deduct";
        audit.Add(new AuditChange(action, Target(userId), Balance(before), Balance(after), reason, $"{Money.Usd(micros)} USD"));
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return new(true, $"{(micros > 0 ? "Granted" : "Deducted")} ${Money.UsdDisplay(Math.Abs(micros))}; balance now ${Money.UsdDisplay(after.BalanceMicros)}.");
    }

    /// <summary>Suspends (every key refused with a 403 on every instance) or lifts a suspension.</summary>
    public async Task<AdminOutcome> SetSuspendedAsync(Guid userId, bool suspend, string? reason, CancellationToken ct)
    {
        if (CheckReason(reason) is { } refused) return refused;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == userId, ct);
        if (user is null) return AdminOutcome.Refused("No such user.");
        if ((user.SuspendedAt is not null) == suspend) return AdminOutcome.Refused(suspend ? "The account is already suspended." : "The account is not suspended.");
        var before = Suspension(user);
        user.SuspendedAt = suspend ? clock.GetUtcNow() : null;
        user.SuspensionReason = suspend ? reason!.Trim() : null;
        audit.Add(new AuditChange(suspend ? "user.suspend" : "user.unsuspend", Target(userId), before, Suspension(user), reason));
        await db.SaveChangesAsync(ct);
        await NotifyAsync($"owner:{userId}", ct);
        await transaction.CommitAsync(ct);
        return new(true, suspend ? "Suspended: every key of the account is refused." : "Suspension lifted.");
    }

    /// <summary>Clears the freeze a Stripe dispute put on the account's keys (the money taken back stays taken back).</summary>
    public async Task<AdminOutcome> ClearDisputeAsync(Guid userId, string? reason, CancellationToken ct)
    {
        if (CheckReason(reason) is { } refused) return refused;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var account = await db.Set<BillingAccount>().FirstOrDefaultAsync(a => a.UserId == userId, ct);
        if (account?.DisputedAt is not { } disputedAt) return AdminOutcome.Refused("The account has no dispute freeze.");
        account.DisputedAt = null;
        account.UpdatedAt = clock.GetUtcNow();
        audit.Add(new AuditChange("dispute.clear", Target(userId), new { disputedAt }, new { disputedAt = (DateTimeOffset?)null }, reason));
        await db.SaveChangesAsync(ct);
        await NotifyAsync($"owner:{userId}", ct);
        await transaction.CommitAsync(ct);
        return new(true, "Dispute freeze cleared: the account's keys work again.");
    }

    /// <summary>Per-account RPM and TPM that beat the plan and the usage tier; both null removes the override.</summary>
    public async Task<AdminOutcome> SetRateLimitOverrideAsync(Guid userId, int? requestsPerMinute, long? tokensPerMinute, string? reason, CancellationToken ct)
    {
        if (CheckReason(reason) is { } refused) return refused;
        if (requestsPerMinute is < 1 || tokensPerMinute is < 1) return AdminOutcome.Refused("Limits must be at least 1 (leave a field empty for no override).");
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == userId, ct);
        if (user is null) return AdminOutcome.Refused("No such user.");
        var before = new { user.RequestsPerMinuteOverride, user.TokensPerMinuteOverride };
        if (before.RequestsPerMinuteOverride == requestsPerMinute && before.TokensPerMinuteOverride == tokensPerMinute)
            return AdminOutcome.Refused("Nothing to change.");
        user.RequestsPerMinuteOverride = requestsPerMinute;
        user.TokensPerMinuteOverride = tokensPerMinute;
        audit.Add(new AuditChange("user.rate-limits", Target(userId), before, new { user.RequestsPerMinuteOverride, user.TokensPerMinuteOverride }, reason));
        await db.SaveChangesAsync(ct);
        await NotifyAsync($"owner:{userId}", ct);
        await transaction.CommitAsync(ct);
        return new(true, requestsPerMinute is null && tokensPerMinute is null ? "Override removed: the plan or usage tier applies." : "Rate-limit override saved.");
    }

    /// <summary>Revokes one of the user's keys, on every instance within moments.</summary>
    public async Task<AdminOutcome> RevokeKeyAsync(Guid userId, Guid keyId, string? reason, CancellationToken ct)
    {
        if (CheckReason(reason) is { } refused) return refused;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var key = await db.Set<ApiKey>().FirstOrDefaultAsync(k => k.Id == keyId && k.OwnerId == userId, ct);
        if (key is null) return AdminOutcome.Refused("No such key on this account.");
        if (key.RevokedAt is not null) return AdminOutcome.Refused("The key is already revoked.");
        key.RevokedAt = clock.GetUtcNow();
        audit.Add(new AuditChange("key.revoke", $"key:{keyId}", new { key.Prefix, revokedAt = (DateTimeOffset?)null }, new { key.Prefix, key.RevokedAt }, reason,
            $"user:{userId}"));
        await db.SaveChangesAsync(ct);
        await NotifyAsync($"key:{keyId}", ct);
        await transaction.CommitAsync(ct);
        return new(true, $"Key {key.Prefix}… revoked.");
    }

    private static AdminOutcome? CheckReason(string? reason) => string.IsNullOrWhiteSpace(reason)
        ? AdminOutcome.Refused("Give a reason: it goes to the audit log.")
        : reason.Trim().Length > ReasonMaxLength ? AdminOutcome.Refused($"Keep the reason to {ReasonMaxLength} characters.") : null;

    private static string Target(Guid userId) => $"user:{userId}";

    private static object Suspension(AppUser user) => new { user.SuspendedAt, user.SuspensionReason };

    private static object Balance(CreditBalance b) => new { b.BalanceMicros, b.HeldMicros, b.AvailableMicros };

    private static (NpgsqlConnection, NpgsqlTransaction) Npgsql(IDbContextTransaction transaction) =>
        ((NpgsqlConnection)transaction.GetDbTransaction().Connection!, (NpgsqlTransaction)transaction.GetDbTransaction());

    /// <summary>The balance, with its row locked until the transaction ends (so a deduction is checked against what stays true).</summary>
    private static async Task<CreditBalance> LockBalanceAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Guid userId, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("select balance_micros, held_micros from credit_accounts where user_id = $1 for update", connection, tx);
        command.Parameters.Add(new() { Value = userId });
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? new CreditBalance(reader.GetInt64(0), reader.GetInt64(1)) : new CreditBalance(0, 0);
    }

    private Task NotifyAsync(string payload, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"select pg_notify({CacheNotifications.Channel}, {payload})", ct);
}
