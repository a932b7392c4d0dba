using System.Net;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Features.Providers;
using Polly.CircuitBreaker;

namespace AiGate.Web.Features.Gateway;

/// <summary>How a routed call ended before any byte reached the client.</summary>
public enum RouteOutcome
{
    /// <summary>A provider answered 2xx: <see cref="RouteResult.Response"/> is open, ready to relay.</summary>
    Answered,
    /// <summary>A provider refused the request itself (400, 413, 422…): not another provider's business.</summary>
    Rejected,
    /// <summary>Every attempt failed (connection, 5xx, 429…).</summary>
    Failed,
    TimedOut,
    /// <summary>Every provider's circuit breaker was open.</summary>
    Unavailable,
    ClientAborted,
}

public sealed class RouteResult : IDisposable
{
    public required RouteOutcome Outcome { get; init; }
    public Provider? Provider { get; init; }
    public HttpResponseMessage? Response { get; init; }
    /// <summary>For <see cref="RouteOutcome.Rejected"/>: the upstream's status and body (bounded).</summary>
    public byte[]? ErrorBody { get; init; }
    public int Attempts { get; init; }
    public int UpstreamStatus { get; init; }
    /// <summary>Time from the first attempt to the answer's headers.</summary>
    public TimeSpan UpstreamTime { get; init; }
    /// <summary>Keeps the attempt's token source (client abort) alive while the body is relayed.</summary>
    internal CancellationTokenSource? Lifetime { get; init; }

    public void Dispose()
    {
        Response?.Dispose();
        Lifetime?.Dispose();
    }
}

/// <summary>
/// Sends one call along a model's routes until a provider answers (RELIABILITY F2, F4): healthy routes
/// first, then degraded ones, routes marked down skipped unless every route is down (then all are tried
/// rather than failing without asking); within a health rank, priority order (weighted shuffle within a
/// priority). Health comes from the in-memory <see cref="HealthSnapshot"/> (no database round trip), and
/// every attempt's outcome is counted there for the passive checks. A provider whose breaker is open is
/// skipped, connection errors, timeouts, 429 and 5xx move on to the next route, and a model with a
/// single route is retried up to twice with jittered backoff (honouring a short Retry-After).
/// Nothing is retried once an answer is being relayed: the caller owns the response from then on.
/// </summary>
public sealed partial class UpstreamRouter(ProviderRegistry providers, HealthSnapshot health, ILogger<UpstreamRouter> logger)
{
    private const int MinAttempts = 3;
    private static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(5);

    public async Task<RouteResult> SendAsync(ResolvedModel model, Func<Provider, string, HttpRequestMessage?> build, CancellationToken clientAborted)
    {
        var plan = Plan(model.Routes, health);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var attempts = 0;
        var sawTimeout = false;
        var sawOnlyOpenBreakers = true;
        var tried = new HashSet<string>(StringComparer.Ordinal);
        TimeSpan? retryAfter = null;

        foreach (var route in plan)
        {
            if (!providers.ByName.TryGetValue(route.Provider, out var provider)) continue;
            if (!tried.Add(route.Provider + "\n" + route.UpstreamModel))
                await BackoffAsync(attempts, retryAfter, clientAborted);
            using var request = build(provider, route.UpstreamModel);
            if (request is null) continue;
            attempts++;
            retryAfter = null;

            var lifetime = CancellationTokenSource.CreateLinkedTokenSource(clientAborted);
            lifetime.CancelAfter(provider.Timeout);
            bool? succeeded = null;   // for the passive checks; stays null when no call went out (breaker open, client gone)
            try
            {
                var response = await provider.Breaker.ExecuteAsync(static async (state, token) =>
                {
                    try
                    {
                        return await state.provider.Http.SendAsync(state.request, token);
                    }
                    catch (OperationCanceledException) when (!state.clientAborted.IsCancellationRequested)
                    {
                        throw new TimeoutException("The upstream did not answer in time.");
                    }
                }, (provider, request, clientAborted), lifetime.Token);
                sawOnlyOpenBreakers = false;
                // A refusal of the request itself (400…) still shows the provider is up.
                succeeded = !ProviderRegistry.IsProviderFailure(response.StatusCode);

                if (response.IsSuccessStatusCode)
                {
                    lifetime.CancelAfter(Timeout.InfiniteTimeSpan);   // from here the relay's own deadlines apply
                    return new RouteResult
                    {
                        Outcome = RouteOutcome.Answered, Provider = provider, Response = response, Attempts = attempts,
                        UpstreamTime = System.Diagnostics.Stopwatch.GetElapsedTime(started), Lifetime = lifetime,
                    };
                }
                var status = response.StatusCode;
                var body = await ReadErrorBodyAsync(response, lifetime.Token);
                response.Dispose();
                if (!ProviderRegistry.IsProviderFailure(status))
                {
                    lifetime.Dispose();
                    return new RouteResult { Outcome = RouteOutcome.Rejected, Provider = provider, ErrorBody = body, Attempts = attempts, Response = null, UpstreamStatus = (int)status };
                }
                retryAfter = response.Headers.RetryAfter?.Delta;
                LogUpstreamFailed(provider.Name, (int)status, model.Id);
            }
            catch (BrokenCircuitException)
            {
                LogBreakerOpen(provider.Name);
            }
            catch (TimeoutException)
            {
                sawOnlyOpenBreakers = false;
                sawTimeout = true;
                succeeded = false;
                LogUpstreamTimedOut(provider.Name, model.Id);
            }
            catch (HttpRequestException ex)
            {
                sawOnlyOpenBreakers = false;
                succeeded = false;
                LogUpstreamUnreachable(provider.Name, model.Id, ex.HttpRequestError);
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                lifetime.Dispose();
                return new RouteResult { Outcome = RouteOutcome.ClientAborted, Attempts = attempts };
            }
            finally
            {
                if (succeeded is { } ok) health.RecordOutcome(provider.Name, route.UpstreamModel, ok);
            }
            lifetime.Dispose();
        }

        var outcome = attempts == 0 || sawOnlyOpenBreakers ? RouteOutcome.Unavailable : sawTimeout ? RouteOutcome.TimedOut : RouteOutcome.Failed;
        return new RouteResult { Outcome = outcome, Attempts = attempts };
    }

    /// <summary>
    /// At least <see cref="MinAttempts"/> tries: the usable routes in order, then again from the top. Usable:
    /// not down, or every route when all of them are down.
    /// </summary>
    private static List<ModelRoute> Plan(IReadOnlyList<ModelRoute> routes, HealthSnapshot health)
    {
        var ranked = routes.Select(r => (Route: r, State: health.Route(r.Provider, r.UpstreamModel))).ToList();
        if (ranked.Any(r => r.State != HealthState.Down)) ranked.RemoveAll(r => r.State == HealthState.Down);
        var ordered = new List<ModelRoute>(routes.Count);
        foreach (var group in ranked.GroupBy(r => (r.State, r.Route.Priority))
                     .OrderBy(g => g.Key.State).ThenBy(g => g.Key.Priority).Select(g => g.Select(r => r.Route)))
        {
            var pool = group.ToList();
            while (pool.Count > 0)
            {
                var total = pool.Sum(r => Math.Max(1, r.Weight));
                var pick = Random.Shared.Next(total);
                var index = 0;
                for (; index < pool.Count - 1; index++)
                {
                    pick -= Math.Max(1, pool[index].Weight);
                    if (pick < 0) break;
                }
                ordered.Add(pool[index]);
                pool.RemoveAt(index);
            }
        }
        var plan = new List<ModelRoute>(Math.Max(MinAttempts, ordered.Count));
        for (var i = 0; ordered.Count > 0 && i < Math.Max(MinAttempts, ordered.Count); i++) plan.Add(ordered[i % ordered.Count]);
        return plan;
    }

    private static Task BackoffAsync(int attempt, TimeSpan? retryAfter, CancellationToken ct)
    {
        var wait = retryAfter is { } ra && ra <= MaxRetryAfter
            ? ra
            : TimeSpan.FromMilliseconds(100 * Math.Pow(2, Math.Max(0, attempt - 1)) * (0.5 + Random.Shared.NextDouble()));
        return Task.Delay(wait, ct);
    }

    private static async Task<byte[]> ReadErrorBodyAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[64 * 1024];
            var total = 0;
            int read;
            while (total < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(total), ct)) > 0) total += read;
            return buffer[..total];
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            return [];
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} answered {Status} for {Model}; trying the next route")]
    private partial void LogUpstreamFailed(string provider, int status, string model);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} timed out for {Model}; trying the next route")]
    private partial void LogUpstreamTimedOut(string provider, string model);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} unreachable for {Model} ({Error}); trying the next route")]
    private partial void LogUpstreamUnreachable(string provider, string model, HttpRequestError error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Provider {Provider} skipped: its circuit breaker is open")]
    private partial void LogBreakerOpen(string provider);
}
