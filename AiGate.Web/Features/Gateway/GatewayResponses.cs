using System.Diagnostics;
using System.Globalization;
using AiGate.Web.Infrastructure.Telemetry;

namespace AiGate.Web.Features.Gateway;

/// <summary>What chat and embeddings share: failure answers, bounded reads, Server-Timing.</summary>
public static class GatewayResponses
{
    /// <summary>Writes the client's answer when routing produced no relayable response; false when there is one to relay.</summary>
    public static async Task<bool> WriteRouteFailureAsync(HttpContext context, RouteResult route)
    {
        switch (route.Outcome)
        {
            case RouteOutcome.Answered:
                return false;
            case RouteOutcome.ClientAborted:
                return true;
            case RouteOutcome.Rejected:
                // The provider refused the request itself: pass its reason and status on, in OpenAI's shape.
                var message = route.Provider!.Adapter.ReadErrorMessage(route.ErrorBody ?? []) ?? "The upstream provider rejected the request.";
                context.Response.Headers["X-AiGate-Provider"] = route.Provider.Name;
                await ApiErrors.WriteAsync(context, route.UpstreamStatus, message, "invalid_request_error", "upstream_rejected");
                return true;
            case RouteOutcome.ByokKeyRefused:
                // 403, not 401: the caller's AiGate key is fine (401 would tell SDKs it is not); their own provider key is not.
                var refused = route.RefusedKey!;
                context.Response.Headers["X-AiGate-Provider"] = route.Provider!.Name;
                await ApiErrors.WriteAsync(context, StatusCodes.Status403Forbidden,
                    $"The provider refused your own {refused.Kind} key \"{refused.Label}\" (ending in {refused.Last4}) with HTTP {route.UpstreamStatus}. " +
                    "Replace it on the Provider keys page (/keys/providers), or allow it to fall back to the platform's keys.",
                    "invalid_request_error", "byok_key_refused");
                return true;
            case RouteOutcome.TimedOut:
                await ApiErrors.WriteAsync(context, StatusCodes.Status504GatewayTimeout,
                    "The upstream provider did not answer in time. Please retry.", "server_error", "upstream_timeout");
                return true;
            case RouteOutcome.Unavailable:
                await ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                    "Every provider for this model is failing right now. Please retry shortly.", "server_error", "upstream_unavailable",
                    retryAfter: TimeSpan.FromSeconds(15));
                return true;
            default:
                await ApiErrors.WriteAsync(context, StatusCodes.Status502BadGateway,
                    "The upstream provider failed to answer. Please retry.", "server_error", "upstream_error");
                return true;
        }
    }

    /// <summary>
    /// A non-streamed answer's whole body, read whether or not the client is still there, until the
    /// call's total deadline (the answered attempt's, <see cref="RouteResult.Lifetime"/>); null when it is too large,
    /// broke off or ran past the deadline.
    /// </summary>
    public static async ValueTask<byte[]?> ReadBeforeDeadlineAsync(RouteResult route, int maxBytes)
    {
        try
        {
            return await ReadBoundedAsync(route.Response!, maxBytes, route.Lifetime!.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>The whole body, or null when it is larger than <paramref name="maxBytes"/> or broke off.</summary>
    public static async ValueTask<byte[]?> ReadBoundedAsync(HttpResponseMessage response, int maxBytes, CancellationToken ct)
    {
        var declared = response.Content.Headers.ContentLength;
        if (declared > maxBytes) return null;
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            // The usual answer says its length: read it into an array of exactly that size, the one allocation.
            if (declared is { } length)
            {
                var body = length == 0 ? [] : new byte[length];
                await stream.ReadExactlyAsync(body, ct);
                return body;
            }
            // Chunked: gather in pooled buffers, copy out once at the end.
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
            var total = 0;
            try
            {
                int read;
                while ((read = await stream.ReadAsync(buffer.AsMemory(total), ct)) > 0)
                {
                    total += read;
                    if (total > maxBytes) return null;
                    if (total == buffer.Length)
                    {
                        var larger = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, maxBytes + 1));
                        buffer.AsSpan(0, total).CopyTo(larger);
                        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                        buffer = larger;
                    }
                }
                return buffer.AsSpan(0, total).ToArray();
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>
    /// <c>Server-Timing: gateway;dur=…, upstream;dur=…</c>: our own time and the provider's time to
    /// answer (DESIGN rule 9). For streams, "upstream" is the time to the first byte.
    /// </summary>
    public static void SetServerTiming(HttpResponse response, long started, TimeSpan upstream)
    {
        var total = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var ours = Math.Max(0, total - upstream.TotalMilliseconds);
        AiGateTelemetry.AddedLatency.Record(ours);
        // Written by hand: a custom numeric format ("0.##") is parsed on every call (issue 16: 1 % of a call's CPU).
        Span<char> text = stackalloc char[96];
        "gateway;dur=".CopyTo(text);
        var length = "gateway;dur=".Length + Milliseconds(text["gateway;dur=".Length..], ours);
        ", upstream;dur=".CopyTo(text[length..]);
        length += ", upstream;dur=".Length;
        length += Milliseconds(text[length..], upstream.TotalMilliseconds);
        response.Headers["Server-Timing"] = new string(text[..length]);
    }

    /// <summary>Milliseconds as "0.##" writes them (at most two decimals, no trailing zeros); returns the characters written.</summary>
    internal static int Milliseconds(Span<char> destination, double milliseconds)
    {
        var hundredths = (long)Math.Round(Math.Clamp(milliseconds, 0, 1e12) * 100, MidpointRounding.AwayFromZero);
        (hundredths / 100).TryFormat(destination, out var written, default, CultureInfo.InvariantCulture);
        var fraction = (int)(hundredths % 100);
        if (fraction == 0) return written;
        destination[written++] = '.';
        destination[written++] = (char)('0' + fraction / 10);
        if (fraction % 10 != 0) destination[written++] = (char)('0' + fraction % 10);
        return written;
    }
}
