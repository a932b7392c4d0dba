using AiGate.Web.Data;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Infrastructure;

/// <summary>What every feature stands on: logging, errors, health, data protection, security headers.</summary>
public static class InfrastructureExtensions
{
    public static IHostApplicationBuilder AddInfrastructure(this IHostApplicationBuilder builder)
    {
        builder.Logging.ClearProviders();
        if (builder.Environment.IsProduction())
            builder.Logging.AddJsonConsole(o => { o.IncludeScopes = true; o.UseUtcTimestamp = true; });
        else
            builder.Logging.AddSimpleConsole(o => { o.IncludeScopes = true; o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<CacheNotifications>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CacheNotifications>());
        builder.Services.AddSingleton<InstanceRegistry>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<InstanceRegistry>());
        builder.Services.AddProblemDetails();
        builder.Services.AddAppHealthChecks();

        // Fly.io's proxy terminates TLS and forwards X-Forwarded-For/Proto from its own private
        // addresses, which are not known in advance.
        builder.Services.Configure<ForwardedHeadersOptions>(o =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            o.KnownIPNetworks.Clear();
            o.KnownProxies.Clear();
        });
        builder.Services.AddHsts(o => { o.MaxAge = TimeSpan.FromDays(365); o.IncludeSubDomains = true; });
        // No "Server: Kestrel" on any answer: it tells a visitor nothing they need and a scanner what to try.
        builder.Services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(o => o.AddServerHeader = false);

        // One key ring for every instance, in PostgreSQL, so cookies and antiforgery tokens made by
        // one machine are read by the others.
        builder.Services.AddDataProtection().SetApplicationName("AiGate");
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(sp =>
            new ConfigureOptions<KeyManagementOptions>(o => o.XmlRepository = new DbXmlRepository(sp.GetRequiredService<IServiceScopeFactory>())));

        // Graceful shutdown: fly.toml gives a machine kill_timeout = 120 s after the signal; stop
        // taking work and let requests, streams and jobs finish within 110 s of it (OpenStreams ends the
        // streams still open 10 s before that). The host's own setting, shutdownTimeoutSeconds, changes it
        // (tests use a few seconds).
        var shutdownSeconds = builder.Configuration.GetValue("shutdownTimeoutSeconds", 110);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(shutdownSeconds));
        return builder;
    }

    public static WebApplication UseInfrastructure(this WebApplication app)
    {
        if (app.Environment.IsProduction())
        {
            app.UseForwardedHeaders();
            app.UseHsts();
            app.UseHttpsRedirection();
        }
        // One exception handler per request, by audience (issue 16: each handler in the chain costs an async frame per call).
        // /api answers in OpenAI's JSON envelope, never with an HTML error page.
        // A database outage is not our bug: 503 with Retry-After (fail closed), never 500 (issue #11 item 11).
        app.UseWhen(static c => c.Request.Path.StartsWithSegments("/api"), static api => api.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = static context =>
                DatabaseUnavailableException.IsOutage(context.Features.Get<IExceptionHandlerFeature>()?.Error)
                    ? AiGate.Web.Features.Gateway.ApiErrors.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                        "The service is temporarily unavailable: its database cannot be reached. Please retry shortly.",
                        "server_error", "service_unavailable", retryAfter: TimeSpan.FromSeconds(5))
                    : AiGate.Web.Features.Gateway.ApiErrors.WriteAsync(context, StatusCodes.Status500InternalServerError,
                        "The server had an error while processing your request. Sorry about that!", "server_error"),
            // The cache's own "unreachable, nothing known" is expected during an outage: one log line per request would bury the rest.
            SuppressDiagnosticsCallback = static c => c.Exception is DatabaseUnavailableException,
        }));
        app.UseWhen(static c => !c.Request.Path.StartsWithSegments("/api"), static pages =>
        {
            pages.UseExceptionHandler("/Error");
            pages.UseStatusCodePagesWithReExecute("/Error/{0}");
        });
        app.UseSecurityHeaders();
        app.MapHealthEndpoints();
        app.MapStaticAssets();
        app.UseRouting();
        // The cookie (pages, the Hangfire dashboard, the local mailbox) means nothing to /api, which authenticates each
        // call by its bearer key (ApiKeyAuthenticator): its calls skip the cookie handler and the authorization step
        // (issue 16: about 1.5 KB and three async frames a call). WebApplication adds both middlewares in front of
        // everything unless the app's own builder says they are set; a branch's builder has its own copy of the
        // properties, so the flags go on the app itself (the keys UseAuthentication/UseAuthorization set).
        app.UseWhen(static c => !c.Request.Path.StartsWithSegments("/api"), static pages =>
        {
            pages.UseAuthentication();
            pages.UseAuthorization();
        });
        var properties = ((IApplicationBuilder)app).Properties;
        properties["__AuthenticationMiddlewareSet"] = true;
        properties["__AuthorizationMiddlewareSet"] = true;
        return app;
    }
}
