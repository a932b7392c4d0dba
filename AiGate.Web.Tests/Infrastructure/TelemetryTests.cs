using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Credits;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// The app with telemetry on and in-memory exporters. The app's instruments are process-wide (as
/// System.Diagnostics ones are) and other fixtures' apps run in this process too, so every check here is
/// filtered to this fixture's own model or trace.
/// </summary>
public sealed class TelemetryApp : CreditsApp
{
    public const string TracedModel = "test/telemetry";
    public List<Activity> Spans { get; } = [];
    public List<Metric> Metrics { get; } = [];

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(TracedModel, "Telemetry", "fake", "fake-model");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings =>
        new Dictionary<string, string?>(base.Settings) { ["Telemetry:Enabled"] = "true" };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureServices(services =>
        {
            services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(Spans));
            services.ConfigureOpenTelemetryMeterProvider(m => m.AddInMemoryExporter(Metrics));
        });
    }

    /// <summary>The sum of a counter's points (or a histogram's counts) whose tags include every one given.</summary>
    public long Sum(string name, params (string Key, string Value)[] tags)
    {
        Services.GetRequiredService<MeterProvider>().ForceFlush();
        long total = 0;
        lock (Metrics)
        {
            // The in-memory exporter appends a snapshot of every metric at each flush; the newest one holds the totals.
            var metric = Metrics.LastOrDefault(m => m.Name == name);
            if (metric is null) return 0;
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                var pointTags = new Dictionary<string, string?>();
                foreach (var tag in point.Tags) pointTags[tag.Key] = tag.Value?.ToString();
                if (!tags.All(t => pointTags.TryGetValue(t.Key, out var v) && v == t.Value)) continue;
                total += metric.MetricType switch
                {
                    MetricType.LongSum => point.GetSumLong(),
                    MetricType.Histogram => point.GetHistogramCount(),
                    _ => 0,
                };
            }
        }
        return total;
    }
}

public sealed class TelemetryTests(TelemetryApp app) : IClassFixture<TelemetryApp>
{
    private static object Chat(bool stream) =>
        new { model = TelemetryApp.TracedModel, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 50, stream };

    [Fact]
    public async Task One_call_is_one_trace_from_the_request_through_routing_and_the_upstream_call_to_settlement()
    {
        app.Upstream.Reset();
        var (client, key, _) = await app.CreateApiClientAsync();
        // The caller's trace context, as a traced client would send it: the gateway's spans join that trace.
        var traceId = ActivityTraceId.CreateRandom();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/completions") { Content = JsonContent.Create(Chat(stream: false)) };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await app.WaitForUsageAsync();
        app.Services.GetRequiredService<TracerProvider>().ForceFlush();

        List<Activity> trace;
        lock (app.Spans) trace = app.Spans.Where(s => s.TraceId == traceId).ToList();
        var settle = Assert.Single(trace, s => s.OperationName == "aigate.settle");
        Assert.Equal(TelemetryApp.TracedModel, settle.GetTagItem("aigate.model"));
        // The fake provider is an ASP.NET Core app in this process too: its server span is in the trace, a child of the upstream call.
        var server = Assert.Single(trace, s => s.Kind == ActivityKind.Server && (string?)s.GetTagItem("url.path") == "/api/v1/chat/completions");
        var route = Assert.Single(trace, s => s.OperationName == "aigate.route");
        Assert.Equal("fake", route.GetTagItem("aigate.provider"));
        var upstream = Assert.Single(trace, s => s.Kind == ActivityKind.Client && s.Source.Name == "System.Net.Http");
        Assert.Equal(route.SpanId, upstream.ParentSpanId);
        Assert.Equal(server.SpanId, route.ParentSpanId);
        Assert.Equal(server.SpanId, settle.ParentSpanId);
        Assert.Equal(await app.Database.ScalarAsync<long>(
            $"select cost_micros from usage_events where request_id = '{response.Headers.GetValues("x-request-id").Single()}'"),
            Convert.ToInt64(settle.GetTagItem("aigate.cost_micros"), System.Globalization.CultureInfo.InvariantCulture));

        // Neither the caller's key nor the provider's appears in any span.
        foreach (var span in trace)
            foreach (var tag in span.TagObjects)
            {
                var value = tag.Value?.ToString() ?? "";
                Assert.DoesNotContain(key, value, StringComparison.Ordinal);
                Assert.DoesNotContain("sk-fake", value, StringComparison.Ordinal);
            }
    }

    [Fact]
    public async Task Calls_count_their_requests_tokens_cost_and_time_to_first_token_as_metered()
    {
        app.Upstream.Reset();
        var requestsBefore = app.Sum("aigate.gateway.requests", ("model", TelemetryApp.TracedModel));
        var outputBefore = app.Sum("aigate.gateway.tokens", ("model", TelemetryApp.TracedModel), ("type", "output"));
        var costBefore = app.Sum("aigate.gateway.cost", ("model", TelemetryApp.TracedModel));
        var ttftBefore = app.Sum("aigate.gateway.time_to_first_token", ("model", TelemetryApp.TracedModel));
        var streamedBefore = app.Sum("aigate.gateway.requests", ("model", TelemetryApp.TracedModel), ("streamed", "true"), ("status", "200"));
        var (client, _, userId) = await app.CreateApiClientAsync();

        (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(stream: false))).EnsureSuccessStatusCode();
        using (var streamed = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(stream: true)))
        {
            streamed.EnsureSuccessStatusCode();
            await streamed.Content.ReadAsStringAsync();
        }
        await app.WaitForUsageAsync();

        Assert.Equal(2, app.Sum("aigate.gateway.requests", ("model", TelemetryApp.TracedModel)) - requestsBefore);
        Assert.Equal(1, app.Sum("aigate.gateway.requests", ("model", TelemetryApp.TracedModel), ("streamed", "true"), ("status", "200")) - streamedBefore);
        Assert.Equal(await app.Database.ScalarAsync<long>($"select sum(completion_tokens)::bigint from usage_events where user_id = '{userId}'"),
            app.Sum("aigate.gateway.tokens", ("model", TelemetryApp.TracedModel), ("type", "output")) - outputBefore);
        Assert.Equal(await app.UsageCostAsync(userId), app.Sum("aigate.gateway.cost", ("model", TelemetryApp.TracedModel)) - costBefore);
        Assert.Equal(1, app.Sum("aigate.gateway.time_to_first_token", ("model", TelemetryApp.TracedModel)) - ttftBefore);
    }

    [Fact]
    public async Task A_call_refused_for_credit_counts_as_a_refusal()
    {
        var before = app.Sum("aigate.gateway.refusals", ("reason", "insufficient_credits"));
        var (client, _, _) = await app.CreateApiClientAsync(creditMicros: 0);
        using var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat(stream: false));
        Assert.Equal(HttpStatusCode.PaymentRequired, response.StatusCode);
        Assert.True(app.Sum("aigate.gateway.refusals", ("reason", "insufficient_credits")) > before);
    }

    [Fact]
    public async Task The_built_app_serves_a_prometheus_scrape_on_its_own_port_and_not_on_the_public_one()
    {
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 10_000_000);
        var key = await app.IssueKeyAsync(userId);
        var port = FreePort();
        var (child, http) = await app.StartInstanceAsync(key, new() { ["Telemetry__PrometheusPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await using (child)
        using (http)
        {
            using var scraper = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            // Exported counters appear once the first collection ran after the call.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            string scrape;
            while (true)
            {
                scrape = await scraper.GetStringAsync($"http://127.0.0.1:{port}/metrics");
                if (scrape.Contains("aigate_gateway_requests", StringComparison.Ordinal) || DateTime.UtcNow > deadline) break;
                await Task.Delay(500);
            }
            Assert.Matches("aigate_gateway_requests(_total)?\\{[^}]*model=\"test/metered\"[^}]*\\} [1-9]", scrape);
            Assert.Contains("aigate_gateway_added_latency", scrape, StringComparison.Ordinal);
            Assert.Contains("http_server_request_duration", scrape, StringComparison.Ordinal);
            Assert.DoesNotContain(key, scrape, StringComparison.Ordinal);

            using var onPublicPort = await http.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.NotFound, onPublicPort.StatusCode);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
