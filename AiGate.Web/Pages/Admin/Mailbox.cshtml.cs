using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// Mail that the local mailbox sender kept (Development without a Resend key), newest first, with its
/// links as real links so flows can be clicked through. Open to anyone in Development (a local machine,
/// the login page links here); admins only elsewhere, where it is empty.
/// </summary>
public sealed partial class MailboxModel(AppDbContext db, IWebHostEnvironment env) : PageModel
{
    public IReadOnlyList<MailRow> Mail { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (!env.IsDevelopment() && !User.IsInRole(Roles.Admin))
            return User.Identity?.IsAuthenticated == true ? Forbid() : Challenge();
        var rows = await db.EmailOutbox.AsNoTracking().Where(e => e.Status == OutboxStatus.DeliveredLocally)
            .OrderByDescending(e => e.CreatedAt).Take(50)
            .Select(e => new { e.Id, e.ToAddress, e.Subject, e.TextBody, e.SentAt, e.CreatedAt }).ToListAsync(ct);
        Mail = rows.Select(r =>
        {
            var text = env.IsDevelopment() ? r.TextBody : EmailExtensions.MaskSecrets(r.TextBody);
            return new MailRow(r.Id, r.ToAddress, r.Subject, r.SentAt ?? r.CreatedAt, text, Links(text));
        }).ToList();
        return Page();
    }

    /// <summary>Our text templates put a link on its own line under "Label:".</summary>
    private static IReadOnlyList<MailLink> Links(string text) =>
        LabelledLink().Matches(text).Select(m => new MailLink(m.Groups["label"].Value.Trim(), m.Groups["url"].Value.Trim())).ToList();

    [GeneratedRegex(@"^(?<label>[^\n:]+):\n(?<url>https?://\S+)$", RegexOptions.Multiline)]
    private static partial Regex LabelledLink();

    public sealed record MailRow(Guid Id, string To, string Subject, DateTimeOffset At, string Text, IReadOnlyList<MailLink> Links);
    public sealed record MailLink(string Label, string Url);
}
