using AiGate.Web.Features.Credits;
using Microsoft.Extensions.Options;
using Npgsql;
using Stripe.Checkout;

namespace AiGate.Web.Features.Billing;

public sealed record FulfilmentResult(bool Credited, long CreditMicros, string? Problem)
{
    public string Describe(string sessionId) =>
        Problem ?? (Credited ? $"credited {Money.Usd(CreditMicros)} USD for {sessionId}" : $"session {sessionId} already fulfilled");
}

/// <summary>
/// Credits a paid one-off Checkout Session, at most once: the session id is the key of its
/// <c>stripe_payments</c> row and of its ledger entry, written in the caller's transaction. The webhook
/// and the success page both call this and may run at the same moment; the second insert waits for
/// the first transaction and then finds the row. The credit comes from Stripe's <c>amount_total</c>:
/// exactly what was paid, plus the pack's stated bonus when the amount is the pack's price.
/// </summary>
public sealed class CheckoutFulfilment(BillingAccounts accounts, IOptions<BillingOptions> billing, NpgsqlDataSource dataSource)
{
    public async Task<FulfilmentResult> FulfilAsync(BillingTransaction tx, Session session, CancellationToken ct)
    {
        if (session.Mode != "payment") return new(false, 0, $"session {session.Id} is not a one-off payment");
        if (session.PaymentStatus != "paid") return new(false, 0, $"session {session.Id} is not paid ({session.PaymentStatus})");
        if (session.AmountTotal is not > 0 || !string.Equals(session.Currency, "usd", StringComparison.OrdinalIgnoreCase))
            return new(false, 0, $"session {session.Id}: unexpected amount or currency ({session.AmountTotal} {session.Currency})");
        var userId = await accounts.ResolveUserAsync(tx, session.CustomerId,
            session.ClientReferenceId ?? StripeEventHandlers.Meta(session.Metadata, "user_id"), ct);
        if (userId is null) return new(false, 0, $"session {session.Id}: unknown customer");

        var amount = session.AmountTotal.Value;
        var kind = StripeEventHandlers.Meta(session.Metadata, "kind") == "pack" ? "pack" : "custom";
        var pack = kind == "pack" ? billing.Value.FindPack(StripeEventHandlers.Meta(session.Metadata, "item_id")) : null;
        var credit = pack is not null && pack.PriceCents == amount ? pack.CreditMicros : checked(amount * 10_000);

        await using (var insert = tx.Command("""
            insert into stripe_payments (id, user_id, kind, payment_intent_id, amount_cents, currency, credited_micros, clawed_back_micros, created_at)
            values ($1, $2, $3, $4, $5, 'usd', $6, 0, now()) on conflict do nothing returning 1
            """, session.Id, userId.Value, kind, session.PaymentIntentId, amount, credit))
        {
            insert.Parameters[3].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Varchar;
            if (await insert.ExecuteScalarAsync(ct) is null) return new(false, credit, null);
        }
        var what = pack is not null ? $"credit pack {pack.Id}" : "credit top-up";
        await Ledger.PostAsync(tx.Connection, tx.Transaction, userId.Value, LedgerKinds.Purchase, credit, $"{what}, Stripe Checkout {session.Id}",
            $"stripe:checkout:{session.Id}", ct);
        return new(true, credit, null);
    }

    /// <summary>The success page's path: its own transaction.</summary>
    public async Task<FulfilmentResult> FulfilAsync(Session session, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        var result = await FulfilAsync(new BillingTransaction(connection, transaction), session, ct);
        await transaction.CommitAsync(ct);
        return result;
    }
}
