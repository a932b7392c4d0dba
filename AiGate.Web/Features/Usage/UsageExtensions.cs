using Quartz;

namespace AiGate.Web.Features.Usage;

public static class UsageExtensions
{
    public static IHostApplicationBuilder AddUsage(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<UsageOptions>().BindConfiguration(UsageOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<UsageQueries>();
        builder.Services.AddSingleton<UsageEndpoints>();
        builder.Services.AddSingleton<UsageRollup>();

        var interval = builder.Configuration.GetValue($"{UsageOptions.Section}:{nameof(UsageOptions.RollupIntervalSeconds)}", 300);
        builder.AddQuartz(q =>
        {
            q.AddJob<UsageRollupJob>(j => j.WithIdentity(UsageRollupJob.Key).StoreDurably().RequestRecovery());
            q.AddTrigger(t => t.ForJob(UsageRollupJob.Key).WithIdentity("usage-rollup-interval", "usage")
                .WithSimpleSchedule(s => s.WithInterval(TimeSpan.FromSeconds(Math.Max(5, interval))).RepeatForever()));
            q.AddJob<UsagePruneJob>(j => j.WithIdentity(UsagePruneJob.Key).StoreDurably().RequestRecovery());
            q.AddTrigger(t => t.ForJob(UsagePruneJob.Key).WithIdentity("usage-prune-daily", "usage")
                .WithCronSchedule("0 37 3 * * ?", c => c.InTimeZone(TimeZoneInfo.Utc)));
        });
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
