using AiGate.Web.Data;
using AiGate.Web.Features.Credits;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// Usage records PostgreSQL refused for good (see <see cref="UsageWriter"/>), newest first, read-only. None of them
/// was charged; an admin who decides one should be charges it by hand (<c>grant-credits</c> with a negative amount).
/// </summary>
public sealed class UsageDeadLettersModel(AppDbContext db) : PageModel
{
    public IReadOnlyList<DeadLetterRow> Rows { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken ct) => Rows = await db.Set<UsageDeadLetter>().AsNoTracking()
        .OrderByDescending(d => d.Id).Take(200)
        .Select(d => new DeadLetterRow(d.Id, d.CreatedAt, d.RequestId, d.UserId, d.KeyId, d.CostMicros, d.SqlState, d.Error, d.Record))
        .ToListAsync(ct);

    public sealed record DeadLetterRow(long Id, DateTimeOffset CreatedAt, string RequestId, Guid UserId, Guid KeyId, long CostMicros,
        string SqlState, string Error, string Record);
}
