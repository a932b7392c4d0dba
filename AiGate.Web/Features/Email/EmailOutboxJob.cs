using AiGate.Web.Features.Jobs;
using Hangfire;

namespace AiGate.Web.Features.Email;

/// <summary>Sends due outbox e-mails. Runs every few seconds and right after a mail is enqueued (<see cref="EmailOutboxNudge"/>).</summary>
[DisableConcurrentExecution(timeoutInSeconds: 60)]
public sealed partial class EmailOutboxJob(EmailOutboxSender sender, ILogger<EmailOutboxJob> logger) : IAppJob
{
    public const string Id = "email-outbox";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var handled = await sender.SendDueAsync(cancellationToken);
        if (handled > 0) LogHandled(Id, handled);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{JobKey} handled {Count} e-mail(s)")]
    private partial void LogHandled(string jobKey, int count);
}
