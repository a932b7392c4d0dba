using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using Stripe;

namespace AiGate.Web.Features.Billing;

public enum WebhookOutcome { Processed, Duplicate, BadSignature, Malformed, OtherApiVersion }

/// <summary>
/// <c>POST /webhooks/stripe</c>'s work: verify the signature and read the event with Stripe.net's
/// <see cref="EventUtility.ConstructEvent(string, string, string, long, long, bool)"/>, then store the event id and
/// apply its effect in one transaction. The event id is the primary key of <c>stripe_events</c>: a redelivery, or
/// a concurrent delivery of the same event (the second insert waits for the first to commit, then finds
/// the row), changes nothing and is still acknowledged. A failure rolls everything back and answers
/// 500, so Stripe delivers again.
/// </summary>
/// <remarks>
/// An event rendered for another API release train than Stripe.net's (<see cref="StripeOptions.ApiVersion"/>) is refused
/// with 400 before anything is recorded: Stripe.net's types would read it without complaint but wrongly (an older
/// invoice names its subscription where today's types do not look, so a paid plan would grant nothing and the event
/// would count as done). Refused, it shows as a failed delivery in Stripe's dashboard and is retried for days while
/// the endpoint's version is corrected. So the version check is ours, after the signature's, rather than Stripe.net's
/// <c>throwOnApiVersionMismatch</c>, whose exception could not be told from a bad signature's.
/// </remarks>
public sealed partial class StripeWebhookProcessor(
    NpgsqlDataSource dataSource, StripeWebhookSecret secret, IOptions<StripeOptions> options, StripeEventHandlers handlers,
    TimeProvider clock, ILogger<StripeWebhookProcessor> logger)
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public async Task<WebhookOutcome> ProcessAsync(byte[] payload, string? signatureHeader, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(signatureHeader))
        {
            LogRejected("no Stripe-Signature header");
            return WebhookOutcome.BadSignature;
        }

        Event stripeEvent;
        try
        {
            stripeEvent = EventUtility.ConstructEvent(StrictUtf8.GetString(payload), signatureHeader, secret.Value,
                options.Value.WebhookToleranceSeconds, clock.GetUtcNow().ToUnixTimeSeconds(), throwOnApiVersionMismatch: false);
        }
        catch (Exception ex) when (ex is StripeException or FormatException or OverflowException or DecoderFallbackException)
        {
            // Stripe.net's signature failures (no matching v1, outside the tolerance, a header it cannot read) and a t= that is not a number.
            LogRejected(ex.Message);
            return WebhookOutcome.BadSignature;
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or NotSupportedException or InvalidOperationException)
        {
            return WebhookOutcome.Malformed;
        }
        if (stripeEvent is not { Id.Length: > 0 and <= 255, Type.Length: > 0 and <= 100, Data: not null })
            return WebhookOutcome.Malformed;
        if (stripeEvent.ApiVersion is null || !EventUtility.IsCompatibleApiVersion(stripeEvent.ApiVersion))
        {
            LogOtherApiVersion(stripeEvent.Id, stripeEvent.Type, stripeEvent.ApiVersion, StripeOptions.ApiVersion);
            return WebhookOutcome.OtherApiVersion;
        }
        var created = StripeTime.Unix(stripeEvent.Created);
        // The object as sent, beside Stripe.net's reading of it: the handlers check that the fields Stripe always sends are there.
        using var document = JsonDocument.Parse(payload);
        if (!document.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object
            || !data.TryGetProperty("object", out var raw) || raw.ValueKind != JsonValueKind.Object)
            return WebhookOutcome.Malformed;

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var insert = new NpgsqlCommand(
            "insert into stripe_events (id, type, created, processed_at) values ($1, $2, $3, now()) on conflict (id) do nothing returning 1",
            connection, transaction))
        {
            insert.Parameters.Add(new() { Value = stripeEvent.Id });
            insert.Parameters.Add(new() { Value = stripeEvent.Type });
            insert.Parameters.Add(new() { Value = created });
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
            outcome = await handlers.HandleAsync(new BillingTransaction(connection, transaction), stripeEvent, raw, created, ct);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe webhook refused: {Reason}")]
    private partial void LogRejected(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Stripe event {EventId} ({Type}) has API version {EventVersion}; this build reads {ExpectedVersion}'s release train. Refused with 400: set the webhook endpoint's API version to {ExpectedVersion} (docs/billing.md)")]
    private partial void LogOtherApiVersion(string eventId, string type, string? eventVersion, string expectedVersion);

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

/// <summary>Stripe's times are Unix seconds on the wire; Stripe.net reads them as UTC <see cref="DateTime"/>s.</summary>
public static class StripeTime
{
    public static long Unix(DateTime utc) => new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)).ToUnixTimeSeconds();
}
