using AiGate.Web.Features.Jobs;

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
        builder.AddRecurringJob<UsageAlertsJob>(UsageAlertsJob.Id, "usage", RecurringJobs.Every(TimeSpan.FromSeconds(Math.Max(5, interval))),
            "Budget and low-balance alerts and hard stops.");
        return builder;
    }
}
