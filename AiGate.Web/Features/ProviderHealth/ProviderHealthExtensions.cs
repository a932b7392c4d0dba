using Quartz;

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
        builder.AddQuartz(q =>
        {
            q.AddJob<ProviderHealthJob>(j => j.WithIdentity(ProviderHealthJob.Key).StoreDurably()
                .WithDescription("Probes every provider (list models) and updates provider and route health; alerts admins on down/recovered."));
            q.AddTrigger(t => t.ForJob(ProviderHealthJob.Key).WithIdentity("provider-health-check-interval", "providers")
                .WithSimpleSchedule(s => s.WithInterval(TimeSpan.FromSeconds(Math.Max(1, interval))).RepeatForever()));
            q.AddJob<ProviderHealthPruneJob>(j => j.WithIdentity(ProviderHealthPruneJob.Key).StoreDurably()
                .WithDescription("Deletes probes older than ProviderHealth:ProbeHistoryDays and traffic buckets older than a day."));
            q.AddTrigger(t => t.ForJob(ProviderHealthPruneJob.Key).WithIdentity("provider-health-prune-daily", "providers")
                .WithCronSchedule("0 47 3 * * ?", c => c.InTimeZone(TimeZoneInfo.Utc)));
        });
        return builder;
    }
}
