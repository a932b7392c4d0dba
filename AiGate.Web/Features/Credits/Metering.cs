using AiGate.Web.Features.Alerts;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Infrastructure.Telemetry;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Credits;

/// <summary>
/// How a metered call ended, for its settlement and its usage row. <paramref name="Pricing"/>: what the call is billed at
/// when not the model's price (the BYOK fee); <paramref name="Byok"/>: it went upstream with the user's own key;
/// <paramref name="Cost"/>: for kinds not priced per token (images, moderations), the charge and list cost, set instead
/// of token prices.
/// </summary>
public sealed record MeteredOutcome(string Provider, TokenUsage? Usage, int Status, bool Streamed, int? TimeToFirstByteMs,
    ModelPricing? Pricing = null, bool Byok = false, MediaCost? Cost = null)
{
    private static readonly MeteredOutcome UnservedJson = new("", null, StatusCodes.Status502BadGateway, false, null);
    private static readonly MeteredOutcome UnservedStream = new("", null, StatusCodes.Status502BadGateway, true, null);

    /// <summary>A call that produced nothing: what settles when the call ends before its outcome is known (an exception). Shared, not made per call.</summary>
    public static MeteredOutcome Unserved(bool streamed) => streamed ? UnservedStream : UnservedJson;
}

/// <summary>
/// The money path of a gateway request (DESIGN rules 1–3, 8): the worst case is reserved before
/// anything goes upstream, the reservation settles to the provider's usage (or our count of what
/// was produced, flagged as estimated), and one usage record per call goes to the writer. Fails
/// closed: no reservation, no upstream call.
/// </summary>
public sealed class Metering(CreditLeases leases, UsageWriter writer, Ledger ledger, BudgetStops budgetStops, IOptions<CreditsOptions> options,
    TimeProvider clock)
{
    public int DefaultMaxOutputTokens => options.Value.DefaultMaxOutputTokens;

    /// <summary>
    /// The most a call can cost: an upper bound of its prompt tokens (the chat endpoint counts them
    /// with the model's tokenizer, <see cref="ModelTokenizer.PromptUpperBound"/>), plus every output
    /// token it may write.
    /// </summary>
    public static long WorstCaseMicros(ModelPricing pricing, long promptTokens, long maxOutputTokens) =>
        pricing.CostMicros(new TokenUsage(promptTokens, maxOutputTokens));

    /// <summary>Reserves, or writes the refusal (402 or 503) and returns null.</summary>
    public async ValueTask<Reservation?> ReserveOrRefuseAsync(HttpContext context, KeyIdentity key, long worstCaseMicros)
    {
        if (options.Value.DisableMeteringForBenchmarks) return Reservation.Unmetered;
        // The account's own hard stop at 100 % of its monthly budget: an in-memory lookup, no round trip.
        if (budgetStops.Find(key.OwnerId) is { } stop)
        {
            CountRefusal("budget_stop");
            await ApiErrors.WriteAsync(context, StatusCodes.Status402PaymentRequired,
                $"Your monthly budget of ${ModelPricing.MicrosToUsd(stop.BudgetMicros)} is used up (${ModelPricing.MicrosToUsd(stop.SpendMicros)} spent " +
                "this month) and your hard stop is on: requests are refused until the month ends (UTC) or you raise the budget in your alert settings.",
                "insufficient_credits", "insufficient_credits");
            return null;
        }
        var (outcome, reservation) = await leases.ReserveAsync(key, worstCaseMicros, context.RequestAborted);
        switch (outcome)
        {
            case ReserveOutcome.Reserved:
                return reservation;
            case ReserveOutcome.KeyLimitReached:
                CountRefusal("key_limit");
                await ApiErrors.WriteAsync(context, StatusCodes.Status402PaymentRequired,
                    $"This API key has reached its credit limit of ${ModelPricing.MicrosToUsd(key.CreditLimitMicros ?? 0)}; " +
                    "raise the limit or use another key.", "insufficient_credits", "insufficient_credits");
                return null;
            case ReserveOutcome.MemberBudgetExceeded:
                CountRefusal("member_budget");
                // The member's own cap, not the organization's money: an admin raises it, or the month ends.
                var held = leases.InFlight(key) > 0;
                await ApiErrors.WriteAsync(context, StatusCodes.Status402PaymentRequired,
                    $"Your monthly budget in this organization (${ModelPricing.MicrosToUsd(key.MemberBudgetMicros ?? 0)}) does not cover this request, " +
                    $"which may cost up to ${ModelPricing.MicrosToUsd(worstCaseMicros)}. Ask an owner or admin of the organization to raise your " +
                    "monthly budget, lower max_tokens, or wait for the next month (UTC)." +
                    (held ? " Some of your budget is reserved by requests in flight." : ""),
                    "insufficient_credits", "member_budget_exceeded", retryAfter: held ? TimeSpan.FromSeconds(1) : null);
                return null;
            case ReserveOutcome.Unavailable:
                CountRefusal("billing_unavailable");
                await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                    "Billing is temporarily unavailable, so no request can be sent upstream. Please retry shortly.",
                    "server_error", "billing_unavailable", retryAfter: TimeSpan.FromSeconds(2));
                return null;
            default:
                CountRefusal("insufficient_credits");
                var balance = await ledger.GetBalanceAsync(key.OwnerId, context.RequestAborted);
                var busy = leases.InFlight(key) > 0;
                await ApiErrors.WriteAsync(context, StatusCodes.Status402PaymentRequired,
                    $"Insufficient credits: your balance is ${ModelPricing.MicrosToUsd(balance.BalanceMicros)} and this request may cost up to " +
                    $"${ModelPricing.MicrosToUsd(worstCaseMicros)}. Add credits, or lower max_tokens." +
                    (busy ? " Some of your balance is reserved by requests in flight." : ""),
                    "insufficient_credits", "insufficient_credits", retryAfter: busy ? TimeSpan.FromSeconds(1) : null);
                return null;
        }
    }

    /// <summary>Settles the reservation to what the call cost and queues its usage row. Returns the cost.</summary>
    public ValueTask<long> CompleteAsync(HttpContext context, Reservation reservation, KeyIdentity key, ResolvedModel model,
        MeteredOutcome outcome, long startedTimestamp)
    {
        var usage = outcome.Usage ?? new TokenUsage(0, 0);
        long cost, providerCost;
        if (outcome.Cost is { } media)
        {
            // Images and moderations: priced per call by the endpoint (their model may have no token prices at all).
            cost = media.ChargeMicros;
            providerCost = outcome.Byok ? 0 : media.ProviderMicros;
        }
        else
        {
            var pricing = outcome.Pricing ?? model.Pricing!.Value;
            cost = outcome.Usage is null ? 0 : pricing.CostMicros(usage);
            // A BYOK call costs the platform nothing upstream: the user's provider bills the user.
            providerCost = outcome.Usage is null || outcome.Byok ? 0 : pricing.ProviderCostMicros(usage);
        }
        return SettleAsync(context.TraceIdentifier, reservation, key, model.Id, outcome, cost, providerCost, startedTimestamp,
            outcome.Status >= 400 ? ApiErrors.ErrorOf(context) : null);
    }

    /// <summary>
    /// Settles at a cost the caller priced (the Realtime relay prices audio and text tokens apart) under its own request id.
    /// <paramref name="error"/>: what a failed call was answered, kept on its usage row.
    /// </summary>
    public async ValueTask<long> SettleAsync(string requestId, Reservation reservation, KeyIdentity key, string modelId, MeteredOutcome outcome,
        long cost, long providerCost, long startedTimestamp, CallError? error = null)
    {
        var usage = outcome.Usage ?? new TokenUsage(0, 0);
        Record(modelId, outcome, usage, cost);
        if (ReferenceEquals(reservation, Reservation.Unmetered)) return cost;
        leases.Settle(reservation, cost);
        await writer.EnqueueAsync(new UsageRecord(
            requestId, key.OwnerId, key.KeyId, reservation.LeaseId, modelId, outcome.Provider, usage, cost, outcome.Streamed,
            outcome.Status, (int)System.Diagnostics.Stopwatch.GetElapsedTime(startedTimestamp).TotalMilliseconds, outcome.TimeToFirstByteMs,
            clock.GetUtcNow(), providerCost, outcome.Byok, error, key.SpendMember, reservation.LeaseMemberId), CancellationToken.None);
        return cost;
    }

    /// <summary>
    /// Reserves without an HTTP answer to write (a Realtime session renewing its reservation mid-session); the monthly
    /// budget's hard stop counts as insufficient credit.
    /// </summary>
    public async ValueTask<(ReserveOutcome Outcome, Reservation? Reservation)> TryReserveAsync(KeyIdentity key, long worstCaseMicros, CancellationToken ct)
    {
        if (options.Value.DisableMeteringForBenchmarks) return (ReserveOutcome.Reserved, Reservation.Unmetered);
        if (budgetStops.Find(key.OwnerId) is not null)
        {
            CountRefusal("budget_stop");
            return (ReserveOutcome.InsufficientCredits, null);
        }
        var result = await leases.ReserveAsync(key, worstCaseMicros, ct);
        if (result.Outcome != ReserveOutcome.Reserved)
            CountRefusal(result.Outcome switch
            {
                ReserveOutcome.Unavailable => "billing_unavailable",
                ReserveOutcome.MemberBudgetExceeded => "member_budget",
                _ => "insufficient_credits",
            });
        return result;
    }

    /// <summary>Gives a reservation back whole (nothing was spent and no usage row is written).</summary>
    public void Release(Reservation reservation)
    {
        if (!ReferenceEquals(reservation, Reservation.Unmetered)) leases.Release(reservation);
    }

    private static void CountRefusal(string reason)
    {
        if (AiGateTelemetry.Refusals.Enabled) AiGateTelemetry.Refusals.Add(1, new KeyValuePair<string, object?>("reason", reason));
    }

    /// <summary>The call's metrics and a settlement span; nothing at all when no exporter listens.</summary>
    private static void Record(string modelId, MeteredOutcome outcome, TokenUsage usage, long cost)
    {
        using var span = AiGateTelemetry.Source.StartActivity("aigate.settle");
        if (span is not null)
        {
            span.SetTag("aigate.model", modelId);
            span.SetTag("aigate.provider", outcome.Provider);
            span.SetTag("aigate.cost_micros", cost);
            span.SetTag("aigate.estimated", usage.Estimated);
        }
        if (!AiGateTelemetry.Requests.Enabled) return;
        var model = new KeyValuePair<string, object?>("model", modelId);
        AiGateTelemetry.Requests.Add(1, model, new("provider", outcome.Provider), new("status", AiGateTelemetry.Status(outcome.Status)),
            new("streamed", outcome.Streamed ? "true" : "false"));
        AiGateTelemetry.Tokens.Add(usage.PromptTokens - usage.CachedTokens, model, new("type", "input"));
        AiGateTelemetry.Tokens.Add(usage.CachedTokens, model, new("type", "cached"));
        AiGateTelemetry.Tokens.Add(usage.CompletionTokens, model, new("type", "output"));
        AiGateTelemetry.Cost.Add(cost, model);
        if (outcome.Streamed && outcome.TimeToFirstByteMs is { } ttft) AiGateTelemetry.TimeToFirstToken.Record(ttft, model);
    }
}
