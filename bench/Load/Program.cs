using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

// bench/Load: see Load.csproj. Every result is one line of "key=value" pairs on stdout, for run.sh to print.
//   rate    --url U --body FILE [--key K] [--header "Name: value"]... --rate 200 --seconds 10 [--warmup-seconds S] [--dump FILE] [--stream]
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
    Console.Error.WriteLine("usage: Load rate|streams --url U --body FILE [--key K] [--header 'N: v'] [--rate R --seconds S --warmup-seconds S --dump FILE --stream] [--count N --ramp-seconds S --http2]");
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

// One call, timed from `due`; null when it failed.
async Task<Call?> CallAsync(long due)
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
        return response.IsSuccessStatusCode ? new Call(total, first < 0 ? total : first, ServerMilliseconds(response), due) : null;
    }
    catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
    {
        return null;
    }
}

async Task<int> RateAsync()
{
    // --warmup-seconds: calls at the same pace first, not counted (this process's own JIT, its first connection). Off
    // by default: the callers that divide a counter's window by the calls counted want every call in it.
    await PaceAsync((int)(options.Rate * options.WarmupSeconds));
    var (results, late, start) = await PaceAsync((int)(options.Rate * options.Seconds));
    var elapsed = Stopwatch.GetElapsedTime(start);
    var ok = results.Where(r => r is not null).Select(r => r!).ToArray();
    // --dump FILE: every call as "due (ms from the first) total handler upstream", to see when the slow ones came.
    if (options.Dump is { Length: > 0 } dump)
        await File.WriteAllLinesAsync(dump, ok.Select(r =>
            $"{Stopwatch.GetElapsedTime(start, r.Due).TotalMilliseconds:0.000} {r.Total:0.000} {r.Server.Gateway:0.000} {r.Server.Upstream:0.000}"));
    var totals = ok.Select(r => r.Total).Order().ToArray();
    var firsts = ok.Select(r => r.First).Order().ToArray();
    Array.Sort(late);
    // The gateway's own account of the slowest 1 % (its Server-Timing: handler + upstream): small when the time was
    // lost outside the handler (waking threads, the kernel, another process holding the core).
    var slowest = ok.OrderByDescending(r => r.Total).Take(Math.Max(1, ok.Length / 100)).ToArray();
    double Median(IEnumerable<double> values) => Percentile(values.Order().ToArray(), 0.50);
    Console.WriteLine((
        $"sent={results.Length} ok={ok.Length} errors={results.Length - ok.Length} achieved_rate={results.Length / elapsed.TotalSeconds:0.0} " +
        $"p50_ms={Percentile(totals, 0.50):0.000} p90_ms={Percentile(totals, 0.90):0.000} p99_ms={Percentile(totals, 0.99):0.000} " +
        $"p999_ms={Percentile(totals, 0.999):0.000} first_p50_ms={Percentile(firsts, 0.50):0.000} first_p99_ms={Percentile(firsts, 0.99):0.000} " +
        $"sender_late_p99_ms={Percentile(late, 0.99):0.000}" +
        (ok.Any(r => r.Server.Gateway >= 0)
            ? $" handler_p50_ms={Median(ok.Select(r => r.Server.Gateway)):0.000} upstream_p50_ms={Median(ok.Select(r => r.Server.Upstream)):0.000}" +
              $" slowest_1pct_p50_ms={Median(slowest.Select(r => r.Total)):0.000} slowest_1pct_handler_p50_ms={Median(slowest.Select(r => r.Server.Gateway)):0.000} slowest_1pct_upstream_p50_ms={Median(slowest.Select(r => r.Server.Upstream)):0.000}"
            : "")));
    return 0;
}

// Starts `count` calls at the fixed rate from a thread of its own: it sleeps (nanosleep, not Thread.Sleep's whole
// milliseconds) until 0.2 ms before each call is due and spins the rest, so a call starts within microseconds of its
// time and the spinning takes 4 % of a core at 200 calls/s. (Task.Delay on the thread pool started one call in ten
// 2-3 ms late here, and every call's latency counts from its due time: the sender's lateness was in the p90.)
// Returns the calls once all have ended, how late each one was started (ms), and when the first was due.
async Task<(Call?[] Results, double[] Late, long Start)> PaceAsync(int count)
{
    var calls = new Task<Call?>[count];
    var late = new double[count];
    var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    var spacing = Stopwatch.Frequency / options.Rate;
    var spinBefore = TimeSpan.FromMilliseconds(0.2);
    var start = Stopwatch.GetTimestamp();
    var sender = new Thread(() =>
    {
        for (var i = 0; i < count; i++)
        {
            var due = start + (long)(i * spacing);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (wait > spinBefore) Sleep(wait - spinBefore);
            while (Stopwatch.GetTimestamp() < due) Thread.SpinWait(20);
            late[i] = Stopwatch.GetElapsedTime(due).TotalMilliseconds;
            calls[i] = CallAsync(due);
        }
        sent.SetResult();
    }) { IsBackground = true, Name = "pacer" };
    sender.Start();
    await sent.Task;
    return (await Task.WhenAll(calls), late, start);
}

async Task<int> StreamsAsync()
{
    var calls = new Task<Call?>[options.Count];
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
    var totals = results.Where(r => r is not null).Select(r => r!.Total).Order().ToArray();
    Console.WriteLine((
        $"streams={options.Count} ok={ok} errors={options.Count - ok} seconds={Stopwatch.GetElapsedTime(start).TotalSeconds:0.0} " +
        $"stream_p50_ms={Percentile(totals, 0.50):0} stream_max_ms={(totals.Length > 0 ? totals[^1] : 0):0}"));
    return 0;
}

// The two durations of AiGate's Server-Timing header (its own handler, the upstream call); -1 without one.
static (double Gateway, double Upstream) ServerMilliseconds(HttpResponseMessage response)
{
    double gateway = -1, upstream = -1;
    if (!response.Headers.TryGetValues("Server-Timing", out var values)) return (gateway, upstream);
    foreach (var value in values)
        foreach (var part in value.Split(','))
            if (part.Trim().Split(";dur=") is [var name, var dur] && double.TryParse(dur, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms))
            {
                if (name == "gateway") gateway = ms;
                else if (name == "upstream") upstream = ms;
            }
    return (gateway, upstream);
}

static void Sleep(TimeSpan span) => usleep((uint)span.TotalMicroseconds);

[DllImport("libc", SetLastError = false)]
static extern int usleep(uint microseconds);

static double Percentile(double[] sorted, double p) =>
    sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

// Latency to the last byte and to the first body byte, from the call's due time; AiGate's Server-Timing durations
// (-1 without the header); the due time itself.
sealed record Call(double Total, double First, (double Gateway, double Upstream) Server, long Due);

sealed record Options(string Mode, string Url, string Body, string? Key, List<(string, string)> Headers, double Rate, double Seconds,
    bool Stream, int Count, double RampSeconds, bool Http2, double WarmupSeconds, string? Dump)
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
            double.Parse(Value("--ramp-seconds", "10"), CultureInfo.InvariantCulture), args.Contains("--http2"),
            double.Parse(Value("--warmup-seconds", "0"), CultureInfo.InvariantCulture), Value("--dump", ""));
    }
}
