using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

// bench/Load: see Load.csproj. Every result is one line of "key=value" pairs on stdout, for run.sh to print.
//   rate    --url U --body FILE [--key K] [--header "Name: value"]... --rate 200 --seconds 10 [--stream]
//   streams --url U --body FILE [--key K] --count 10000 [--ramp-seconds 10] [--http2]
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var options = Options.Parse(args);
var handler = new SocketsHttpHandler
{
    PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
    MaxConnectionsPerServer = int.MaxValue,
    EnableMultipleHttp2Connections = true,
    AutomaticDecompression = DecompressionMethods.None,
    UseCookies = false,
};
using var http = new HttpClient(handler) { Timeout = TimeSpan.FromMinutes(10) };
var body = await File.ReadAllBytesAsync(options.Body);

return options.Mode switch
{
    "rate" => await RateAsync(),
    "streams" => await StreamsAsync(),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Load rate|streams --url U --body FILE [--key K] [--header 'N: v'] [--rate R --seconds S --stream] [--count N --ramp-seconds S --http2]");
    return 2;
}

HttpRequestMessage Request()
{
    var request = new HttpRequestMessage(HttpMethod.Post, options.Url) { Content = new ByteArrayContent(body) };
    request.Content.Headers.ContentType = new("application/json");
    if (options.Key is { Length: > 0 } key) request.Headers.Authorization = new("Bearer", key);
    foreach (var (name, value) in options.Headers) request.Headers.TryAddWithoutValidation(name, value);
    if (options.Http2)
    {
        request.Version = HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
    }
    return request;
}

// One call: (latency to the last byte, time to the first body byte), both from `due`; null when it failed.
async Task<(double Total, double First)?> CallAsync(long due)
{
    try
    {
        using var request = Request();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[16 * 1024];
        var first = -1.0;
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
            if (first < 0) first = Stopwatch.GetElapsedTime(due).TotalMilliseconds;
        var total = Stopwatch.GetElapsedTime(due).TotalMilliseconds;
        return response.IsSuccessStatusCode ? (total, first < 0 ? total : first) : null;
    }
    catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
    {
        return null;
    }
}

async Task<int> RateAsync()
{
    var count = (int)(options.Rate * options.Seconds);
    var calls = new Task<(double Total, double First)?>[count];
    var spacing = Stopwatch.Frequency / options.Rate;
    var start = Stopwatch.GetTimestamp();
    for (var i = 0; i < count; i++)
    {
        var due = start + (long)(i * spacing);
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
        if (wait > TimeSpan.FromMilliseconds(1)) await Task.Delay(wait);
        while (Stopwatch.GetTimestamp() < due) Thread.SpinWait(20);
        calls[i] = CallAsync(due);
    }
    var results = await Task.WhenAll(calls);
    var ok = results.Where(r => r is not null).Select(r => r!.Value).ToArray();
    var totals = ok.Select(r => r.Total).Order().ToArray();
    var firsts = ok.Select(r => r.First).Order().ToArray();
    Console.WriteLine((
        $"sent={count} ok={ok.Length} errors={count - ok.Length} achieved_rate={count / Stopwatch.GetElapsedTime(start).TotalSeconds:0.0} " +
        $"p50_ms={Percentile(totals, 0.50):0.000} p90_ms={Percentile(totals, 0.90):0.000} p99_ms={Percentile(totals, 0.99):0.000} " +
        $"p999_ms={Percentile(totals, 0.999):0.000} first_p50_ms={Percentile(firsts, 0.50):0.000} first_p99_ms={Percentile(firsts, 0.99):0.000}"));
    return 0;
}

async Task<int> StreamsAsync()
{
    var calls = new Task<(double Total, double First)?>[options.Count];
    var spacing = options.RampSeconds * Stopwatch.Frequency / Math.Max(1, options.Count);
    var start = Stopwatch.GetTimestamp();
    for (var i = 0; i < options.Count; i++)
    {
        var due = start + (long)(i * spacing);
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
        if (wait > TimeSpan.FromMilliseconds(1)) await Task.Delay(wait);
        calls[i] = CallAsync(due);
    }
    var results = await Task.WhenAll(calls);
    var ok = results.Count(r => r is not null);
    var totals = results.Where(r => r is not null).Select(r => r!.Value.Total).Order().ToArray();
    Console.WriteLine((
        $"streams={options.Count} ok={ok} errors={options.Count - ok} seconds={Stopwatch.GetElapsedTime(start).TotalSeconds:0.0} " +
        $"stream_p50_ms={Percentile(totals, 0.50):0} stream_max_ms={(totals.Length > 0 ? totals[^1] : 0):0}"));
    return 0;
}

static double Percentile(double[] sorted, double p) =>
    sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

sealed record Options(string Mode, string Url, string Body, string? Key, List<(string, string)> Headers, double Rate, double Seconds,
    bool Stream, int Count, double RampSeconds, bool Http2)
{
    public static Options Parse(string[] args)
    {
        string Value(string name, string? fallback = null)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback ?? throw new ArgumentException($"{name} is required");
        }
        var headers = new List<(string, string)>();
        for (var i = 0; i + 1 < args.Length; i++)
            if (args[i] == "--header" && args[i + 1].Split(':', 2) is [var n, var v]) headers.Add((n.Trim(), v.Trim()));
        return new Options(args.Length > 0 ? args[0] : "", Value("--url"), Value("--body"), Value("--key", ""), headers,
            double.Parse(Value("--rate", "200"), CultureInfo.InvariantCulture), double.Parse(Value("--seconds", "10"), CultureInfo.InvariantCulture),
            args.Contains("--stream"), int.Parse(Value("--count", "0"), CultureInfo.InvariantCulture),
            double.Parse(Value("--ramp-seconds", "10"), CultureInfo.InvariantCulture), args.Contains("--http2"));
    }
}
