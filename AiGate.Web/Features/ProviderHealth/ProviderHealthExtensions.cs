using AiGate.Web.Features.Jobs;

namespace AiGate.Web.Features.ProviderHealth;

public static class ProviderHealthExtensions
{
    /// <summary>
    /// Provider health: the in-memory snapshot routing reads (every instance), the checker, and the
    /// clustered health-check job (every <see cref="ProviderHealthOptions.ProbeIntervalSeconds"/>) and its daily prune.
    /// </summary>
    public static IHostApplicationBuilder AddProviderHealth(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ProviderHealthOptions>().BindConfiguration(ProviderHealthOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<HealthSnapshot>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<HealthSnapshot>());
        builder.Services.AddScoped<HealthChecker>();

        var interval = builder.Configuration.GetValue($"{ProviderHealthOptions.Section}:{nameof(ProviderHealthOptions.ProbeIntervalSeconds)}", 30);
        builder.AddRecurringJob<ProviderHealthJob>(ProviderHealthJob.Id, "providers", RecurringJobs.Every(TimeSpan.FromSeconds(Math.Max(1, interval))),
            "Probes every provider (list models) and updates provider and route health; alerts admins on down/recovered.");
        builder.AddRecurringJob<ProviderHealthPruneJob>(ProviderHealthPruneJob.Id, "providers", "47 3 * * *",
            "Deletes probes older than ProviderHealth:ProbeHistoryDays and traffic buckets older than a day.");
        return builder;
    }
}
