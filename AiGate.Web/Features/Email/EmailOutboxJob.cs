using Quartz;

namespace AiGate.Web.Features.Email;

/// <summary>Sends due outbox e-mails. Runs every few seconds and right after a mail is enqueued (<see cref="EmailOutboxNudge"/>).</summary>
[DisallowConcurrentExecution]
public sealed partial class EmailOutboxJob(EmailOutboxSender sender, ILogger<EmailOutboxJob> logger) : IJob
{
    public static readonly JobKey Key = new("email-outbox", "email");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default)
    {
        var handled = await sender.SendDueAsync(cancellationToken);
        if (handled > 0) LogHandled(Key.ToString(), handled);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{JobKey} handled {Count} e-mail(s)")]
    private partial void LogHandled(string jobKey, int count);
}
