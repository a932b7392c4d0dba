using Hangfire.AspNetCore;
using Hangfire.Logging;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Hangfire's log provider is one static for the whole process, while logger factories belong to a host. When
/// several hosts share a process (the in-process test apps) and the latest one stops, Hangfire would log into a
/// disposed factory and throw, even from type initializers (its schema installer's). This provider forwards to
/// the host's factory and drops the message once that factory is gone; with one host per process, as deployed,
/// it is exactly Hangfire's own ASP.NET Core provider.
/// </summary>
public sealed class HangfireLogging(ILoggerFactory loggers) : ILogProvider
{
    private readonly AspNetCoreLogProvider _inner = new(loggers);

    public ILog GetLogger(string name)
    {
        try
        {
            return new Guarded(_inner.GetLogger(name));
        }
        catch (ObjectDisposedException)
        {
            return new Guarded(null);
        }
    }

    private sealed class Guarded(ILog? inner) : ILog
    {
        public bool Log(Hangfire.Logging.LogLevel logLevel, Func<string>? messageFunc, Exception? exception = null)
        {
            try
            {
                return inner?.Log(logLevel, messageFunc, exception) ?? false;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        }
    }
}
