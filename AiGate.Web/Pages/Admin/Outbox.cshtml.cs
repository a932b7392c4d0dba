using AiGate.Web.Data;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>The e-mail outbox: newest first, filterable by status; <c>?id=</c> previews one message (tokens in links masked).</summary>
public sealed class OutboxModel(AppDbContext db, IWebHostEnvironment env) : PageModel
{
    public OutboxStatus? Status { get; private set; }
    public IReadOnlyList<OutboxRow> Rows { get; private set; } = [];
    public MessageView? Message { get; private set; }

    public async Task OnGetAsync(OutboxStatus? status, Guid? id, CancellationToken ct)
    {
        Status = status;
        var rows = db.EmailOutbox.AsNoTracking();
        if (status is { } s) rows = rows.Where(e => e.Status == s);
        Rows = await rows.OrderByDescending(e => e.CreatedAt).Take(200)
            .Select(e => new OutboxRow(e.Id, e.Kind, e.ToAddress, e.Subject, e.Status, e.Attempts, e.CreatedAt, e.SentAt, e.LastError))
            .ToListAsync(ct);
        if (id is { } messageId)
        {
            Message = await db.EmailOutbox.AsNoTracking().Where(e => e.Id == messageId)
                .Select(e => new MessageView(e.Id, e.ToAddress, e.Subject, e.Status, e.TextBody, e.ProviderMessageId, e.LastError))
                .FirstOrDefaultAsync(ct);
            if (Message is { } m && !EmailExtensions.ShowSecrets(m.Status, env))
                Message = m with { Text = EmailExtensions.MaskSecrets(m.Text) };
        }
    }

    public sealed record OutboxRow(Guid Id, string Kind, string To, string Subject, OutboxStatus Status, int Attempts,
        DateTimeOffset CreatedAt, DateTimeOffset? SentAt, string? LastError);

    public sealed record MessageView(Guid Id, string To, string Subject, OutboxStatus Status, string Text, string? ProviderMessageId, string? LastError);
}
