using AiGate.Web.Features.Jobs;

namespace AiGate.Web.Features.Usage;

public static class UsageExtensions
{
    public static IHostApplicationBuilder AddUsage(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<UsageOptions>().BindConfiguration(UsageOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<UsageQueries>();
        builder.Services.AddSingleton<UsageEndpoints>();
        builder.Services.AddSingleton<UsageRollup>();
        builder.Services.AddSingleton<RequestLog>();

        var interval = builder.Configuration.GetValue($"{UsageOptions.Section}:{nameof(UsageOptions.RollupIntervalSeconds)}", 300);
        builder.AddRecurringJob<UsageRollupJob>(UsageRollupJob.Id, "usage", RecurringJobs.Every(TimeSpan.FromSeconds(Math.Max(5, interval))),
            "Folds new usage events into the rollups.");
        builder.AddRecurringJob<UsagePruneJob>(UsagePruneJob.Id, "usage", "37 3 * * *",
            "Deletes raw usage events past Usage:RawRetentionDays that are already rolled up.");
        return builder;
    }

    /// <summary>
    /// <c>GET /api/v1/balance</c> and <c>GET /api/v1/usage</c>, in the gateway's group. Mapped before
    /// <c>MapGateway</c>; routing picks the literal routes over the gateway's <c>/{**path}</c> 404 catch-all
    /// whatever the order, so the catch-all keeps answering for everything else.
    /// </summary>
    public static IEndpointRouteBuilder MapUsage(this IEndpointRouteBuilder app)
    {
        var endpoints = app.ServiceProvider.GetRequiredService<UsageEndpoints>();
        var api = app.MapGroup("/api/v1");
        api.MapGet("/balance", endpoints.BalanceAsync);
        api.MapGet("/usage", endpoints.UsageAsync);
        return app;
    }
}
