using Quartz;

namespace AiGate.Web.Features.Alerts;

public static class AlertsExtensions
{
    /// <summary>Budget alerts at 70/90/100 %, low-balance alerts, and the hard stop the gateway checks in memory.</summary>
    public static IHostApplicationBuilder AddAlerts(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<AlertsOptions>().BindConfiguration(AlertsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<BudgetStops>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BudgetStops>());
        builder.Services.AddScoped<UsageAlertChecker>();
        builder.Services.AddScoped<AlertPreferencesReader>();

        var interval = builder.Configuration.GetValue($"{AlertsOptions.Section}:{nameof(AlertsOptions.CheckIntervalSeconds)}", 60);
        builder.AddQuartz(q =>
        {
            q.AddJob<UsageAlertsJob>(j => j.WithIdentity(UsageAlertsJob.Key).StoreDurably().RequestRecovery());
            q.AddTrigger(t => t.ForJob(UsageAlertsJob.Key).WithIdentity("usage-alerts-interval", "usage")
                .WithSimpleSchedule(s => s.WithInterval(TimeSpan.FromSeconds(Math.Max(5, interval))).RepeatForever()));
        });
        return builder;
    }
}
