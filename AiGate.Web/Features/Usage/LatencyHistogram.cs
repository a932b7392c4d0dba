using System.Globalization;

namespace AiGate.Web.Features.Usage;

/// <summary>
/// Calls counted per latency bucket: what the rollups keep instead of percentiles (which do not add up over hours,
/// keys or models), so p50/p95 of any range and grouping come from summed buckets. A percentile is reported as the
/// upper bound of the bucket it falls in ("at most 750 ms"), or the last bound for the open last bucket ("over 60 s").
/// </summary>
public static class LatencyHistogram
{
    /// <summary>Bucket upper bounds in ms; migration 0024's <c>usage_latency_histogram</c> uses the same list.</summary>
    public static readonly int[] Bounds = [100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000];

    /// <summary>The bucket of one latency, as PostgreSQL's <c>width_bucket</c> numbers it.</summary>
    public static int BucketOf(int latencyMs)
    {
        var i = 0;
        while (i < Bounds.Length && latencyMs >= Bounds[i]) i++;
        return i;
    }

    public static long Count(long[]? histogram)
    {
        long n = 0;
        if (histogram is not null) foreach (var c in histogram) n += c;
        return n;
    }

    /// <summary>
    /// The nearest-rank percentile <paramref name="p"/> (0–1) as a bucket: its upper bound in ms, with
    /// <c>Over</c> set for the last, open bucket (the value is then its lower bound). Null without calls.
    /// </summary>
    public static LatencyPercentile? Percentile(long[]? histogram, double p)
    {
        var count = Count(histogram);
        if (count == 0) return null;
        var rank = Math.Max(1, (long)Math.Ceiling(p * count));
        long seen = 0;
        for (var i = 0; i < histogram!.Length; i++)
        {
            seen += histogram[i];
            if (seen >= rank) return i < Bounds.Length ? new(Bounds[i], false) : new(Bounds[^1], true);
        }
        return new(Bounds[^1], true);
    }
}

/// <summary>A percentile as its bucket: at most <see cref="Ms"/>, or over it when <see cref="Over"/>.</summary>
public readonly record struct LatencyPercentile(int Ms, bool Over)
{
    /// <summary>For people: "≤ 750 ms", "≤ 1.5 s", "> 60 s".</summary>
    public override string ToString() => Over ? $"> {Seconds(Ms)} s" : Ms >= 1000 ? $"≤ {Seconds(Ms)} s" : $"≤ {Ms} ms";

    private static string Seconds(int ms) => (ms / 1000m).ToString("0.##", CultureInfo.InvariantCulture);
}
