using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Billing;

public enum WebhookOutcome { Processed, Duplicate, BadSignature, Malformed }

/// <summary>
/// <c>POST /webhooks/stripe</c>'s work: verify the signature, then store the event id and apply its
/// effect in one transaction. The event id is the primary key of <c>stripe_events</c>: a redelivery, or
/// a concurrent delivery of the same event (the second insert waits for the first to commit, then finds
/// the row), changes nothing and is still acknowledged. A failure rolls everything back and answers
/// 500, so Stripe delivers again.
/// </summary>
public sealed partial class StripeWebhookProcessor(
    NpgsqlDataSource dataSource, StripeWebhookSecret secret, IOptions<StripeOptions> options, StripeEventHandlers handlers,
    TimeProvider clock, ILogger<StripeWebhookProcessor> logger)
{
    public async Task<WebhookOutcome> ProcessAsync(byte[] payload, string? signatureHeader, CancellationToken ct)
    {
        var verdict = StripeSignature.Verify(payload, signatureHeader, secret.Value, clock.GetUtcNow(), TimeSpan.FromSeconds(options.Value.WebhookToleranceSeconds));
        if (verdict != StripeSignature.Result.Valid)
        {
            LogRejected(verdict);
            return WebhookOutcome.BadSignature;
        }

        StripeEvent? stripeEvent;
        try
        {
            stripeEvent = JsonSerializer.Deserialize<StripeEvent>(payload, StripeJson.Options);
        }
        catch (JsonException)
        {
            stripeEvent = null;
        }
        if (stripeEvent is not { Id.Length: > 0 and <= 255, Type.Length: > 0 and <= 100, Data.Object.ValueKind: JsonValueKind.Object })
            return WebhookOutcome.Malformed;

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var insert = new NpgsqlCommand(
            "insert into stripe_events (id, type, created, processed_at) values ($1, $2, $3, now()) on conflict (id) do nothing returning 1",
            connection, transaction))
        {
            insert.Parameters.Add(new() { Value = stripeEvent.Id });
            insert.Parameters.Add(new() { Value = stripeEvent.Type });
            insert.Parameters.Add(new() { Value = stripeEvent.Created });
            if (await insert.ExecuteScalarAsync(ct) is null)
            {
                LogDuplicate(stripeEvent.Id, stripeEvent.Type);
                return WebhookOutcome.Duplicate;
            }
        }

        string outcome;
        var unreadable = false;
        // A savepoint, so an unreadable object undoes only what its handler did and the event row stays.
        await transaction.SaveAsync("handler", ct);
        try
        {
            outcome = await handlers.HandleAsync(new BillingTransaction(connection, transaction), stripeEvent, ct);
        }
        catch (JsonException ex)
        {
            // The event's object is not the shape its type promises: keep the id (so it is not retried
            // forever) and say why; nothing else changed.
            await transaction.RollbackAsync("handler", ct);
            outcome = $"unreadable object: {ex.Message}";
            unreadable = true;
        }

        await using (var update = new NpgsqlCommand("update stripe_events set outcome = $2 where id = $1", connection, transaction))
        {
            update.Parameters.Add(new() { Value = stripeEvent.Id });
            update.Parameters.Add(new() { Value = Truncate(outcome) });
            await update.ExecuteNonQueryAsync(ct);
        }
        await transaction.CommitAsync(ct);
        if (unreadable) LogUnreadable(stripeEvent.Id, stripeEvent.Type);
        else LogProcessed(stripeEvent.Id, stripeEvent.Type, outcome);
        return WebhookOutcome.Processed;
    }

    private static string Truncate(string s) => s.Length > 500 ? s[..500] : s;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe webhook refused: signature {Verdict}")]
    private partial void LogRejected(StripeSignature.Result verdict);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stripe event {EventId} ({Type}) already processed; acknowledged")]
    private partial void LogDuplicate(string eventId, string type);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stripe event {EventId} ({Type}): {Outcome}")]
    private partial void LogProcessed(string eventId, string type, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe event {EventId} ({Type}) has an unreadable object; recorded, nothing changed")]
    private partial void LogUnreadable(string eventId, string type);
}

/// <summary>The endpoint secret in use: <c>Stripe__WebhookSecret</c>, or in local mode one made up per process.</summary>
public sealed class StripeWebhookSecret(string value)
{
    public string Value { get; } = value;
}

/// <summary>An open connection and transaction that billing changes and their ledger entries share.</summary>
public sealed record BillingTransaction(NpgsqlConnection Connection, NpgsqlTransaction Transaction)
{
    public NpgsqlCommand Command(string sql, params object?[] values)
    {
        var command = new NpgsqlCommand(sql, Connection, Transaction);
        foreach (var value in values) command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        return command;
    }
}
