using AiGate.Web.Data;
using AiGate.Web.Data.Migrations;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AiGate.Web.Infrastructure;

/// <summary>
/// <c>/healthz</c>: the process is alive (no dependencies checked, so a database blip does not get
/// machines restarted). <c>/readyz</c>: the database answers and its schema is current.
/// </summary>
public static class HealthEndpoints
{
    private const string ReadyTag = "ready";

    public static IHealthChecksBuilder AddAppHealthChecks(this IServiceCollection services) =>
        services.AddHealthChecks().AddCheck<DatabaseReadyCheck>("database", tags: [ReadyTag], timeout: TimeSpan.FromSeconds(3));

    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = static _ => false });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = static c => c.Tags.Contains(ReadyTag) });
        return app;
    }

    private sealed class DatabaseReadyCheck(SchemaMigrator migrator) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                // Within the check's 3 s even when the database hangs: Npgsql would wait out its 15 s connect timeout.
                var pending = await DatabaseDeadline.Within(migrator.GetPendingAsync(cancellationToken), cancellationToken);
                return pending.Count == 0
                    ? HealthCheckResult.Healthy()
                    : HealthCheckResult.Unhealthy($"{pending.Count} migration(s) pending");
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException or OperationCanceledException)
            {
                // The message names no host or credentials: health output may be public.
                return HealthCheckResult.Unhealthy("database unreachable");
            }
        }
    }
}
