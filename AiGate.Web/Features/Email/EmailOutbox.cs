using AiGate.Web.Data;

namespace AiGate.Web.Features.Email;

/// <summary>
/// The one way to send an e-mail: <see cref="Enqueue"/> adds an outbox row to the caller's
/// <see cref="AppDbContext"/>, so it is saved (or rolled back) together with the change that caused
/// it. After the commit, <see cref="EmailOutboxNudge"/> triggers the outbox job, which sends it.
/// </summary>
public sealed class EmailOutbox(AppDbContext db, TimeProvider clock)
{
    public OutboxEmail Enqueue(string to, EmailContent content, Guid? userId)
    {
        var now = clock.GetUtcNow();
        var row = new OutboxEmail
        {
            Id = Guid.CreateVersion7(now),
            UserId = userId,
            Kind = content.Kind,
            ToAddress = to,
            Subject = content.Subject,
            HtmlBody = content.Html,
            TextBody = content.Text,
            Status = OutboxStatus.Pending,
            CreatedAt = now,
            NextAttemptAt = now,
        };
        db.EmailOutbox.Add(row);
        return row;
    }
}
