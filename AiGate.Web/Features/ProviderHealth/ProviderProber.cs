using System.Diagnostics;
using System.Net;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>The result of one probe.</summary>
public sealed record ProbeResult(string Provider, bool Ok, int? StatusCode, int LatencyMs, string? Error);

/// <summary>
/// One cheap, free call per provider with the platform's own key (never a customer's BYOK key, RELIABILITY
/// J4): each provider's documented "list models" endpoint (<see cref="ProviderAdapter.CreateModelsRequest"/>), which checks the network path, TLS, the key and
/// the API front door without spending tokens. It bypasses the provider's circuit breaker on purpose: the
/// probe is how we learn that an open breaker's provider is back.
/// </summary>
public sealed class ProviderProber
{
    public static async Task<ProbeResult> ProbeAsync(Provider provider, string? apiKey, TimeSpan timeout, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            using var request = provider.Adapter.CreateModelsRequest(provider, apiKey);
            using var response = await provider.Http.SendAsync(request, deadline.Token);
            var latency = Elapsed(started);
            var status = (int)response.StatusCode;
            return response.IsSuccessStatusCode
                ? new ProbeResult(provider.Name, true, status, latency, null)
                : new ProbeResult(provider.Name, false, status, latency, $"HTTP {status} {Reason(response.StatusCode)}".TrimEnd());
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new ProbeResult(provider.Name, false, null, Elapsed(started), $"no answer within {timeout.TotalSeconds:0} s");
        }
        catch (HttpRequestException ex)
        {
            // The error kind only: exception messages can carry addresses we do not want on pages.
            return new ProbeResult(provider.Name, false, null, Elapsed(started), $"unreachable ({ex.HttpRequestError})");
        }
    }

    private static string Reason(HttpStatusCode status) => status switch
    {
        HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => "(the platform key was refused)",
        HttpStatusCode.TooManyRequests => "(rate limited)",
        HttpStatusCode.NotFound => "(wrong base URL?)",
        _ => "",
    };

    private static int Elapsed(long started) => (int)Math.Min(int.MaxValue, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
}
