using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace AiGate.Web.Infrastructure.Telemetry;

/// <summary>Operator telemetry settings (<c>Telemetry__*</c>); the OTLP exporter reads the standard <c>OTEL_*</c> variables.</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>Collect traces and metrics even with no exporter configured (tests add their own exporter).</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Serve a Prometheus scrape at <c>http://*:PORT/metrics</c>, a listener of its own beside Kestrel, so it is
    /// never on the public port (fly.toml's <c>[metrics]</c> points Fly's scraper at it). Off when unset.
    /// </summary>
    public int? PrometheusPort { get; set; }
}

/// <summary>
/// OpenTelemetry, on only when an exporter is configured (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c> or
/// <c>Telemetry__PrometheusPort</c>) or <c>Telemetry__Enabled</c>: off, nothing listens to the app's
/// <see cref="AiGateTelemetry"/> instruments and nothing is registered.
/// </summary>
public static class TelemetryExtensions
{
    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(TelemetryOptions.Section).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (options.PrometheusPort is < 1 or > 65535)
            throw new StartupConfigurationException($"Telemetry__PrometheusPort must be a port number (1-65535), not {options.PrometheusPort}.");
        if (!options.Enabled && !otlp && options.PrometheusPort is null) return builder;

        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("aigate", serviceInstanceId: Environment.MachineName));
        // Traces only where something takes them (OTLP, or a test's exporter): a Prometheus scrape alone is metrics,
        // and recording every request's spans for no one cost a third of the throughput (docs/performance.md).
        if (otlp || options.Enabled)
            otel.WithTracing(tracing => tracing
                .AddSource(AiGateTelemetry.Name, "Npgsql")
                // Health probes every few seconds would drown the traces that matter.
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !context.Request.Path.StartsWithSegments("/healthz")
                    && !context.Request.Path.StartsWithSegments("/readyz"))
                .AddHttpClientInstrumentation());
        otel.WithMetrics(metrics =>
        {
            metrics.AddMeter(AiGateTelemetry.Name, "Npgsql")
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation();
            if (options.PrometheusPort is { } port)
                metrics.AddPrometheusHttpListener(o =>
                {
                    o.Port = port;
                    // Every address (Fly's private network is IPv6), which the Host option cannot say.
                    o.ConfigureHttpListener = (_, listener) =>
                    {
                        listener.Prefixes.Clear();
                        listener.Prefixes.Add($"http://+:{port}/");
                    };
                });
        });
        if (otlp) otel.UseOtlpExporter();
        return builder;
    }
}
