namespace AiGate.Web.Features.Email;

/// <summary>
/// Development without a Resend key: nothing leaves the machine. The row is marked DeliveredLocally
/// and the mailbox page (/Admin/Mailbox) shows it with its links. Never registered in Production.
/// </summary>
public sealed class LocalMailboxSender : IEmailSender
{
    public Task<SendResult> SendAsync(OutgoingEmail email, CancellationToken ct) =>
        Task.FromResult(new SendResult(SendOutcome.DeliveredLocally, ProviderMessageId: "local-" + email.Id.ToString("N")));
}
