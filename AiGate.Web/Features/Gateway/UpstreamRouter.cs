using System.Net;
using AiGate.Web.Features.Byok;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Features.Providers;
using AiGate.Web.Infrastructure.Telemetry;
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
    /// <summary>The provider refused the user's own key (BYOK) and the user did not allow the platform's keys instead.</summary>
    ByokKeyRefused,
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
    /// <summary>The last attempt went upstream with the user's own key (BYOK): the call is billed the BYOK fee.</summary>
    public bool Byok { get; init; }
    /// <summary>For <see cref="RouteOutcome.ByokKeyRefused"/>: the user's key the provider refused.</summary>
    public UserKey? RefusedKey { get; init; }
    /// <summary>Time from the first attempt to the answer's headers.</summary>
    public TimeSpan UpstreamTime { get; init; }
    /// <summary>
    /// The last attempt's request reached the upstream whole, so it may be generating (and billing us):
    /// such an attempt is never retried, and a client that leaves after it pays at least for its prompt.
    /// </summary>
    public bool RequestSent { get; init; }
    /// <summary>
    /// A non-streamed answer's token source, alive while its body is read: it keeps the call's total deadline, which bounds
    /// that read. Null for a stream, whose relay keeps its own deadlines.
    /// </summary>
    internal AttemptLifetime? Lifetime { get; init; }

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
/// skipped; what is retried (on the next route, or the same one up to twice with jittered backoff,
/// honouring a short Retry-After) is only what cannot have started a generation: a connection that
/// failed before the request was sent whole, and 429 or 5xx answers. Once a request reached the
/// upstream, a timeout or a broken connection ends the call (issue 11 #4: a retried long generation was
/// paid three times). Streams wait <see cref="Provider.Timeout"/> for their first byte; non-streamed
/// calls get <see cref="Provider.NonStreamTimeout"/> for headers and body together, since a provider sends
/// their headers only when the generation is done. The caller owns the response once it is answered.
/// With a <see cref="ByokCall"/>, an attempt at a provider the user has a key for carries the user's key (BYOK): such
/// attempts bypass the provider's breaker and are left out of its health (a user's bad key must not take a provider
/// away from everyone), and a refusal of the key (401, 403, Gemini's 400 API_KEY_INVALID) either moves the call to the
/// platform's keys (the user allowed it) or ends it with <see cref="RouteOutcome.ByokKeyRefused"/>.
/// </summary>
public sealed partial class UpstreamRouter(ProviderRegistry providers, ProviderKeyRing keys, ByokKeys userKeys, HealthSnapshot health,
    ILogger<UpstreamRouter> logger)
{
    private const int MinAttempts = 3;

    /// <summary>The adapter of a configured provider, or null when no provider has that name.</summary>
    public ProviderAdapter? Adapter(string provider) => providers.ByName.TryGetValue(provider, out var p) ? p.Adapter : null;
    /// <summary>A configured provider by name, or null.</summary>
    public Provider? Provider(string provider) => providers.ByName.GetValueOrDefault(provider);
    private static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(5);

    public Task<RouteResult> SendAsync(ResolvedModel model, bool stream, Func<Provider, string, string?, HttpRequestMessage?> build,
        CancellationToken clientAborted, ByokCall? byok = null) =>
        SendAsync(model, stream, build, static (build, provider, upstreamModel, apiKey) => build(provider, upstreamModel, apiKey), clientAborted, byok);

    /// <summary>As the other overload, with the request built from <paramref name="state"/> (the hot path passes its state, no closure).</summary>
    public async Task<RouteResult> SendAsync<TState>(ResolvedModel model, bool stream, TState state, Func<TState, Provider, string, string?, HttpRequestMessage?> build,
        CancellationToken clientAborted, ByokCall? byok = null)
    {
        using var span = AiGateTelemetry.Source.StartActivity("aigate.route");
        span?.SetTag("aigate.model", model.Id);
        // A model with one route (most) tries it MinAttempts times: no plan is built for it.
        var routes = model.Routes;
        var plan = routes.Count == 1 ? null : Plan(routes, health);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var attempts = 0;
        var sawTimeout = false;
        var sawOnlyOpenBreakers = true;
        // The routes tried so far: most calls make one attempt, so the set exists only from the second on.
        (string Provider, string Model)? first = null;
        HashSet<(string, string)>? tried = null;
        TimeSpan? retryAfter = null;
        var fellBack = false;

        for (int i = 0, planned = plan?.Count ?? MinAttempts; i < planned; i++)
        {
            var route = plan is null ? routes[0] : plan[i];
            Provider? provider;
            if (byok?.Custom?.Custom is { } custom) provider = route.Provider == custom.Name ? custom : null;
            else if (!providers.ByName.TryGetValue(route.Provider, out provider)) provider = null;
            if (provider is null) continue;
            // The platform's keys right after the user's key was refused: another key, not another try of the same one.
            if (!FirstTry(ref first, ref tried, route.Provider, route.UpstreamModel) && !fellBack)
                await BackoffAsync(attempts, retryAfter, clientAborted);
            fellBack = false;
            var userKey = byok?.KeyFor(provider);
            // Each attempt takes the provider's next key (round robin), so a retry after a refused key uses another.
            var key = userKey is null ? keys.Next(provider.Name) : null;
            if (userKey is null && key is null && provider.Kind != ProviderKind.Echo)
            {
                LogNoKey(provider.Name);
                continue;
            }
            using var request = build(state, provider, route.UpstreamModel, userKey?.Secret ?? key?.Secret);
            if (request is null) continue;
            provider.Prepare(request);
            var content = UpstreamContent.Of(request);
            attempts++;
            span?.SetTag("aigate.provider", provider.Name);
            span?.SetTag("aigate.attempts", attempts);
            retryAfter = null;

            var lifetime = new AttemptLifetime(clientAborted, stream ? provider.Timeout : provider.NonStreamTimeout);
            bool? succeeded = null;   // for the passive checks; stays null when no call went out (breaker open, client gone)
            var byokAttempt = userKey is not null;
            try
            {
                var send = (provider, request, clientAborted);
                var response = byokAttempt
                    ? await SendOnceAsync(send, lifetime.Token)
                    : await provider.Breaker.ExecuteAsync(static (send, token) => SendOnceAsync(send, token), send, lifetime.Token);
                sawOnlyOpenBreakers = false;
                // A refusal of the request itself (400…) still shows the provider is up.
                succeeded = !ProviderRegistry.IsProviderFailure(response.StatusCode);

                if (response.IsSuccessStatusCode)
                {
                    // A stream's relay has its own deadlines from here (HttpClient let go of this token with the headers), so
                    // its source goes now rather than living as long as the stream (issue 16: a source, a timer and a
                    // registration on the client's token per open stream). A whole answer's body is read within the call's
                    // deadline, whether or not the client stays.
                    AttemptLifetime? bodyLifetime = null;
                    if (stream) lifetime.Dispose();
                    else bodyLifetime = lifetime.ForWholeBody();
                    return new RouteResult
                    {
                        Outcome = RouteOutcome.Answered, Provider = provider, Response = response, Attempts = attempts, RequestSent = true, Byok = byokAttempt,
                        UpstreamTime = System.Diagnostics.Stopwatch.GetElapsedTime(started), Lifetime = bodyLifetime,
                    };
                }
                var status = response.StatusCode;
                var body = await ReadErrorBodyAsync(response, lifetime.Token);
                response.Dispose();
                var keyRefused = IsKeyRefusal(provider.Kind, status, body);
                if (userKey is not null && keyRefused)
                {
                    succeeded = null;
                    userKeys.Refused(userKey, (int)status);
                    if (userKey.FallbackToPlatform && byok!.Custom is null)
                    {
                        byok.FallBack(userKey);
                        fellBack = true;
                        lifetime.Dispose();
                        continue;
                    }
                    lifetime.Dispose();
                    return new RouteResult
                    {
                        Outcome = RouteOutcome.ByokKeyRefused, Provider = provider, Attempts = attempts, UpstreamStatus = (int)status, RefusedKey = userKey,
                    };
                }
                if (key is not null && keyRefused) keys.Rejected(key, (int)status);
                if (!ProviderRegistry.IsProviderFailure(status) && !keyRefused)
                {
                    lifetime.Dispose();
                    return new RouteResult
                    {
                        Outcome = RouteOutcome.Rejected, Provider = provider, ErrorBody = body, Attempts = attempts, Response = null, UpstreamStatus = (int)status,
                        Byok = byokAttempt,
                    };
                }
                retryAfter = response.Headers.RetryAfter?.Delta;
                LogUpstreamFailed(provider.Name, (int)status, model.Id);
                CountUpstreamError(provider.Name, AiGateTelemetry.Status((int)status));
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
                CountUpstreamError(provider.Name, "timeout");
                if (content.Sent)
                {
                    lifetime.Dispose();
                    return new RouteResult { Outcome = RouteOutcome.TimedOut, Provider = provider, Attempts = attempts, RequestSent = true, Byok = byokAttempt };
                }
            }
            catch (HttpRequestException ex)
            {
                sawOnlyOpenBreakers = false;
                succeeded = false;
                LogUpstreamUnreachable(provider.Name, model.Id, ex.HttpRequestError);
                CountUpstreamError(provider.Name, "unreachable");
                if (content.Sent)
                {
                    lifetime.Dispose();
                    return new RouteResult { Outcome = RouteOutcome.Failed, Provider = provider, Attempts = attempts, RequestSent = true, Byok = byokAttempt };
                }
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                lifetime.Dispose();
                return new RouteResult { Outcome = RouteOutcome.ClientAborted, Provider = provider, Attempts = attempts, RequestSent = content.Sent, Byok = byokAttempt };
            }
            finally
            {
                if (succeeded is { } ok && !byokAttempt) health.RecordOutcome(provider.Name, route.UpstreamModel, ok);
            }
            lifetime.Dispose();
        }

        var outcome = attempts == 0 || sawOnlyOpenBreakers ? RouteOutcome.Unavailable : sawTimeout ? RouteOutcome.TimedOut : RouteOutcome.Failed;
        return new RouteResult { Outcome = outcome, Attempts = attempts };
    }

    /// <summary>True the first time a (provider, upstream model) is tried in this call.</summary>
    private static bool FirstTry(ref (string Provider, string Model)? first, ref HashSet<(string, string)>? tried, string provider, string model)
    {
        if (first is null)
        {
            first = (provider, model);
            return true;
        }
        tried ??= [first.Value];
        return tried.Add((provider, model));
    }

    private static async ValueTask<HttpResponseMessage> SendOnceAsync((Provider provider, HttpRequestMessage request, CancellationToken clientAborted) state,
        CancellationToken token)
    {
        try
        {
            return await state.provider.Http.SendAsync(state.request, token);
        }
        catch (OperationCanceledException) when (!state.clientAborted.IsCancellationRequested)
        {
            throw new TimeoutException("The upstream did not answer in time.");
        }
    }

    /// <summary>
    /// The provider refused the key itself: 401 or 403, or Gemini's 400 whose error names <c>API_KEY_INVALID</c> (how the
    /// Gemini API answers a wrong or deleted key).
    /// </summary>
    public static bool IsKeyRefusal(ProviderKind kind, HttpStatusCode status, ReadOnlySpan<byte> body) =>
        status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
        || (kind == ProviderKind.Gemini && status == HttpStatusCode.BadRequest && body.IndexOf("API_KEY_INVALID"u8) >= 0);

    /// <summary>
    /// At least <see cref="MinAttempts"/> tries: the usable routes in order, then again from the top. Usable:
    /// not down, or every route when all of them are down.
    /// </summary>
    private static List<ModelRoute> Plan(IReadOnlyList<ModelRoute> routes, HealthSnapshot health)
    {
        // Runs on every call: plain loops over a handful of routes, no LINQ (STYLE, hot path).
        var count = routes.Count;
        var ranked = new List<(HealthState State, ModelRoute Route)>(count);
        var anyUsable = false;
        for (var i = 0; i < count; i++)
        {
            var state = health.Route(routes[i].Provider, routes[i].UpstreamModel);
            anyUsable |= state != HealthState.Down;
            ranked.Add((state, routes[i]));
        }
        if (anyUsable) ranked.RemoveAll(static r => r.State == HealthState.Down);
        // Stable insertion sort by (state, priority): healthy before degraded, then lower priority first.
        for (var i = 1; i < ranked.Count; i++)
        {
            var item = ranked[i];
            var j = i - 1;
            for (; j >= 0 && Before(item, ranked[j]); j--) ranked[j + 1] = ranked[j];
            ranked[j + 1] = item;
        }
        // Within each run of equal (state, priority), draw by weight without replacement.
        var plan = new List<ModelRoute>(Math.Max(MinAttempts, ranked.Count));
        for (var start = 0; start < ranked.Count;)
        {
            var end = start + 1;
            while (end < ranked.Count && !Before(ranked[start], ranked[end])) end++;
            for (var next = start; next < end; next++)
            {
                var total = 0;
                for (var k = next; k < end; k++) total += Math.Max(1, ranked[k].Route.Weight);
                var pick = Random.Shared.Next(total);
                var index = next;
                for (; index < end - 1; index++)
                {
                    pick -= Math.Max(1, ranked[index].Route.Weight);
                    if (pick < 0) break;
                }
                (ranked[next], ranked[index]) = (ranked[index], ranked[next]);
                plan.Add(ranked[next].Route);
            }
            start = end;
        }
        for (var i = plan.Count; plan.Count > 0 && i < MinAttempts; i++) plan.Add(plan[i % ranked.Count]);
        return plan;

        static bool Before((HealthState State, ModelRoute Route) a, (HealthState State, ModelRoute Route) b) =>
            a.State < b.State || (a.State == b.State && a.Route.Priority < b.Route.Priority);
    }

    private static void CountUpstreamError(string provider, string error)
    {
        if (AiGateTelemetry.UpstreamErrors.Enabled)
            AiGateTelemetry.UpstreamErrors.Add(1, new KeyValuePair<string, object?>("provider", provider), new("error", error));
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Provider} skipped: it has no usable key")]
    private partial void LogNoKey(string provider);

    [LoggerMessage(Level = LogLevel.Information, Message = "Provider {Provider} skipped: its circuit breaker is open")]
    private partial void LogBreakerOpen(string provider);
}

/// <summary>
/// One attempt's cancellation: its deadline, and the client leaving, in one source (what a linked source with a timer
/// does, with one object fewer, issue 16).
/// </summary>
internal sealed class AttemptLifetime : CancellationTokenSource
{
    private readonly long _deadlineAt;
    private CancellationTokenRegistration _client;
    private volatile bool _clientLeft;

    public AttemptLifetime(CancellationToken clientAborted, TimeSpan deadline) : base(deadline)
    {
        _deadlineAt = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(deadline.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        _client = clientAborted.UnsafeRegister(static state =>
        {
            var lifetime = (AttemptLifetime)state!;
            lifetime._clientLeft = true;
            lifetime.Cancel();
        }, this);
    }

    /// <summary>
    /// What bounds reading a whole answer's body, which is read whether or not the client is still there (the provider
    /// generated it and bills it): this source, no longer following the client; or, when the client already left, a new
    /// one with what remains of the deadline (this one is disposed).
    /// </summary>
    public AttemptLifetime ForWholeBody()
    {
        _client.Dispose();   // waits for a cancellation by the client already running, so _clientLeft is settled
        if (!_clientLeft) return this;
        var remaining = System.Diagnostics.Stopwatch.GetElapsedTime(System.Diagnostics.Stopwatch.GetTimestamp(), _deadlineAt);
        Dispose();
        return new AttemptLifetime(CancellationToken.None, remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _client.Dispose();
        base.Dispose(disposing);
    }
}
