using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace AiGate.Web.Infrastructure.Telemetry;

/// <summary>
/// The app's own spans and metrics, all named <c>aigate.*</c> (docs/operations.md lists them). Static, as
/// System.Diagnostics instruments are meant to be: with nothing listening (telemetry off, the default) a span
/// start returns null and an instrument's <c>Enabled</c> is false, so the hot path pays a field read. Call sites
/// that pass tags check <c>Enabled</c> first, because building a tag boxes its value.
/// </summary>
public static class AiGateTelemetry
{
    public const string Name = "AiGate";

    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    /// <summary>Boundaries for latencies measured in milliseconds, from tens of microseconds to a minute.</summary>
    private static readonly double[] LatencyBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000];

    /// <summary>Metered calls, tagged model, provider, status and streamed.</summary>
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("aigate.gateway.requests", "{request}",
        "Metered gateway calls by model, provider, status and streamed");

    /// <summary>Tokens of metered calls, tagged model and type (input, output, cached).</summary>
    public static readonly Counter<long> Tokens = Meter.CreateCounter<long>("aigate.gateway.tokens", "{token}",
        "Tokens of metered calls by model and type");

    /// <summary>What metered calls were charged, in micro-USD, tagged model.</summary>
    public static readonly Counter<long> Cost = Meter.CreateCounter<long>("aigate.gateway.cost", "{micro-USD}",
        "Charged to users, micro-USD, by model");

    /// <summary>Calls refused before anything went upstream because of money, tagged reason.</summary>
    public static readonly Counter<long> Refusals = Meter.CreateCounter<long>("aigate.gateway.refusals", "{request}",
        "Calls refused for credit (insufficient_credits, key_limit, budget_stop, billing_unavailable)");

    /// <summary>The gateway's own time of a call: everything but the wait for the provider's answer head.</summary>
    public static readonly Histogram<double> AddedLatency = Meter.CreateHistogram("aigate.gateway.added_latency", "ms",
        "Time the gateway added to a call (total minus the upstream's time to answer)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    /// <summary>Time to the first byte of a streamed answer, as the client saw it.</summary>
    public static readonly Histogram<double> TimeToFirstToken = Meter.CreateHistogram("aigate.gateway.time_to_first_token", "ms",
        "Time from the request to the first streamed chunk, by model",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    /// <summary>Failed upstream attempts, tagged provider and error (an HTTP status, timeout or unreachable).</summary>
    public static readonly Counter<long> UpstreamErrors = Meter.CreateCounter<long>("aigate.upstream.errors", "{attempt}",
        "Upstream attempts that failed, by provider and error");

    /// <summary>Credit lease acquisitions from the database, tagged outcome (granted, empty, failed).</summary>
    public static readonly Counter<long> LeaseAcquisitions = Meter.CreateCounter<long>("aigate.credits.lease_acquisitions", "{acquisition}",
        "Trips to the database for credit: granted, empty (no credit left) or failed");

    /// <summary>Usage records queued and not yet committed on this instance.</summary>
    public static readonly UpDownCounter<long> WriterBacklog = Meter.CreateUpDownCounter<long>("aigate.usage_writer.backlog", "{record}",
        "Usage records waiting to be written");

    /// <summary>One usage writer flush (a batch committed), in milliseconds.</summary>
    public static readonly Histogram<double> WriterFlush = Meter.CreateHistogram("aigate.usage_writer.flush_duration", "ms",
        "Time to commit one batch of usage records",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

    /// <summary>Background job executions, tagged job and outcome.</summary>
    public static readonly Counter<long> JobRuns = Meter.CreateCounter<long>("aigate.jobs.runs", "{run}", "Background job runs by job and outcome");

    /// <summary>HTTP status codes as tag values, so recording one does not box an int per call.</summary>
    public static string Status(int status) => status switch
    {
        200 => "200", 400 => "400", 401 => "401", 402 => "402", 403 => "403", 404 => "404", 408 => "408", 413 => "413",
        429 => "429", 499 => "499", 500 => "500", 502 => "502", 503 => "503", 504 => "504", 529 => "529",
        _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
