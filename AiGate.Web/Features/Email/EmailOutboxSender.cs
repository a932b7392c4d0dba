using AiGate.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Email;

/// <summary>
/// Sends due outbox rows through <see cref="IEmailSender"/>. Safe with several instances: rows are
/// claimed with one <c>UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) RETURNING</c> that also sets a
/// lease (<c>locked_until</c>) and counts the attempt, so each row goes to one sender; if that sender
/// dies mid-send the lease expires, another instance retries with the same idempotency key (the row's
/// id) and Resend delivers it once.
/// </summary>
public sealed partial class EmailOutboxSender(
    NpgsqlDataSource dataSource, AppDbContext db, IEmailSender sender, TimeProvider clock,
    IOptions<EmailOptions> options, ILogger<EmailOutboxSender> logger)
{
    private const int BatchSize = 20;
    /// <summary>Longer than one send can take (the Resend client times out after 30 s).</summary>
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    /// <summary>Sends everything due now, batch after batch; returns how many rows were handled.</summary>
    public async Task<int> SendDueAsync(CancellationToken ct)
    {
        var total = 0;
        while (!ct.IsCancellationRequested)
        {
            var batch = await ClaimAsync(ct);
            foreach (var row in batch)
                await SendOneAsync(row, ct);
            total += batch.Count;
            if (batch.Count < BatchSize) break;
        }
        return total;
    }

    private async Task SendOneAsync(ClaimedRow row, CancellationToken ct)
    {
        var result = await sender.SendAsync(new OutgoingEmail(row.Id, options.Value.From, row.To, row.Subject, row.Html, row.Text), ct);
        var now = clock.GetUtcNow();
        var mine = db.EmailOutbox.Where(e => e.Id == row.Id && e.LockedUntil == row.LockedUntil);
        switch (result.Outcome)
        {
            case SendOutcome.Sent or SendOutcome.DeliveredLocally:
                var status = result.Outcome == SendOutcome.Sent ? OutboxStatus.Sent : OutboxStatus.DeliveredLocally;
                await mine.ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.Status, status).SetProperty(e => e.SentAt, now)
                    .SetProperty(e => e.ProviderMessageId, result.ProviderMessageId)
                    .SetProperty(e => e.LastError, (string?)null).SetProperty(e => e.LockedUntil, (DateTimeOffset?)null), CancellationToken.None);
                LogSent(row.Id, status, row.Attempts);
                break;
            case SendOutcome.RetryLater when row.Attempts < options.Value.MaxAttempts:
                var next = now + Max(Backoff(row.Attempts), result.RetryAfter);
                await mine.ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.NextAttemptAt, next).SetProperty(e => e.LastError, Trim(result.Error))
                    .SetProperty(e => e.LockedUntil, (DateTimeOffset?)null), CancellationToken.None);
                LogRetry(row.Id, row.Attempts, next);
                break;
            default:
                await mine.ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.Status, OutboxStatus.Failed).SetProperty(e => e.LastError, Trim(result.Error))
                    .SetProperty(e => e.LockedUntil, (DateTimeOffset?)null), CancellationToken.None);
                LogFailed(row.Id, row.Attempts);
                break;
        }
    }

    /// <summary>30 s, 1, 2, 4… minutes, at most an hour.</summary>
    internal static TimeSpan Backoff(int attempts) =>
        TimeSpan.FromSeconds(Math.Min(3600, 30 * Math.Pow(2, Math.Max(0, attempts - 1))));

    private static TimeSpan Max(TimeSpan backoff, TimeSpan? retryAfter) =>
        retryAfter is { } r && r > backoff ? r : backoff;

    private static string? Trim(string? error) => error is { Length: > 1000 } ? error[..1000] : error;

    private async Task<List<ClaimedRow>> ClaimAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await using var command = dataSource.CreateCommand("""
            update email_outbox o
               set locked_until = $2, attempts = o.attempts + 1
              from (select id from email_outbox
                     where status = 'Pending' and next_attempt_at <= $1 and (locked_until is null or locked_until <= $1)
                     order by next_attempt_at
                     limit $3
                     for update skip locked) due
             where o.id = due.id
            returning o.id, o.to_address, o.subject, o.html_body, o.text_body, o.attempts, o.locked_until
            """);
        command.Parameters.Add(new() { Value = now });
        command.Parameters.Add(new() { Value = now + Lease });
        command.Parameters.Add(new() { Value = BatchSize });
        var rows = new List<ClaimedRow>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            rows.Add(new ClaimedRow(reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetInt32(5), reader.GetFieldValue<DateTimeOffset>(6)));
        return rows;
    }

    private sealed record ClaimedRow(Guid Id, string To, string Subject, string Html, string Text, int Attempts, DateTimeOffset LockedUntil);

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox e-mail {EmailId} {Status} (attempt {Attempt})")]
    private partial void LogSent(Guid emailId, OutboxStatus status, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox e-mail {EmailId} failed attempt {Attempt}; next try at {NextAttemptAt}")]
    private partial void LogRetry(Guid emailId, int attempt, DateTimeOffset nextAttemptAt);

    [LoggerMessage(Level = LogLevel.Error, Message = "Outbox e-mail {EmailId} failed permanently after {Attempts} attempt(s)")]
    private partial void LogFailed(Guid emailId, int attempts);
}
