namespace AiGate.Web.Features.Email;

/// <summary>
/// The transport under the outbox: Resend in Production (<see cref="ResendEmailSender"/>), the local
/// mailbox in Development without a key (<see cref="LocalMailboxSender"/>). Only the outbox job calls it.
/// </summary>
public interface IEmailSender
{
    /// <summary>Sends one message. <see cref="OutgoingEmail.Id"/> is the idempotency key: sending the same id twice delivers once.</summary>
    Task<SendResult> SendAsync(OutgoingEmail email, CancellationToken ct);
}

public sealed record OutgoingEmail(Guid Id, string From, string To, string Subject, string Html, string Text);

public enum SendOutcome
{
    /// <summary>The provider accepted it.</summary>
    Sent,
    /// <summary>Kept on this machine for the mailbox page (Development).</summary>
    DeliveredLocally,
    /// <summary>Failed for now (429, 5xx, network, a key problem an operator can fix): try again later.</summary>
    RetryLater,
    /// <summary>The provider refused this message itself (400/422): retrying cannot help.</summary>
    Rejected,
}

public sealed record SendResult(SendOutcome Outcome, string? ProviderMessageId = null, string? Error = null, TimeSpan? RetryAfter = null);
