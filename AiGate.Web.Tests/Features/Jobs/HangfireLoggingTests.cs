using AiGate.Web.Tests.Infrastructure;
using Hangfire;
using Hangfire.Logging;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Jobs;

/// <summary>Hangfire's log provider is process-wide; an app that stopped must not make Hangfire's logging throw for everyone after it.</summary>
public sealed class HangfireLoggingTests
{
    [Fact]
    public async Task Logging_after_the_app_that_configured_Hangfire_stopped_does_not_throw()
    {
        var app = new AiGateApp();
        await app.InitializeAsync();
        try
        {
            _ = app.Services.GetRequiredService<IGlobalConfiguration>();   // runs AddHangfire's configuration: sets the provider
        }
        finally
        {
            await ((IAsyncLifetime)app).DisposeAsync();   // disposes the host and its logger factory
        }

        // What a type initializer (Hangfire.PostgreSql's schema installer) or another app's server does next.
        var log = LogProvider.GetLogger("after-the-app-stopped");
        log.Log(Hangfire.Logging.LogLevel.Info, () => "still fine");
    }
}
