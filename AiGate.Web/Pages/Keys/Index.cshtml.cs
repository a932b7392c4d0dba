using System.ComponentModel.DataAnnotations;
using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Keys;

/// <summary>
/// The current organization's API keys: list, create, rename, rotate, revoke (issue #4, RELIABILITY K3, K4, K6, K9,
/// K12). A new secret travels once, in TempData (an encrypted cookie that is deleted when read), to the
/// GET after the redirect; it is never written to the database, a log or a URL. Every query and
/// command filters by <see cref="CurrentOrganization.Keys"/>: owners and admins reach every key of the organization,
/// other members only the keys they created; any other key id answers 404 and changes nothing.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.UseOwnKeys)]
public sealed class IndexModel(AppDbContext db, ApiKeyIssuer issuer, ModelCatalog catalog, OrgContext orgs, TimeProvider clock,
    IOptions<EmailOptions> email) : PageModel
{
    /// <summary>The rotation grace periods the form offers (RELIABILITY K6).</summary>
    public static readonly IReadOnlyDictionary<string, (TimeSpan Grace, string Label)> GraceChoices = new Dictionary<string, (TimeSpan, string)>
    {
        ["now"] = (TimeSpan.Zero, "Now"),
        ["1h"] = (TimeSpan.FromHours(1), "In 1 hour"),
        ["24h"] = (TimeSpan.FromHours(24), "In 24 hours"),
    };

    public IReadOnlyList<KeyRow> Keys { get; private set; } = [];
    /// <summary>The organization the keys belong to; <see cref="CurrentOrganization.Role"/> decides whose keys are listed.</summary>
    public CurrentOrganization Org => orgs.Current;
    public IReadOnlyList<ModelOption> Models { get; private set; } = [];
    public InputModel Input { get; set; } = new();
    public RenameModel Rename { get; set; } = new();
    public DateTimeOffset Now { get; private set; }

    /// <summary>The row whose rename failed validation: its form opens with the message.</summary>
    public Guid? RenameFailedFor { get; private set; }

    [TempData] public string? NewSecret { get; set; }
    [TempData] public string? NewSecretName { get; set; }
    [TempData] public string? StatusMessage { get; set; }

    /// <summary>What a client sets to use the key: the public address when configured, else this request's.</summary>
    public string ApiBaseUrl => AccountLinks.Absolute(Request, email.Value, "/api/v1");

    public Task OnGetAsync(CancellationToken ct) => LoadAsync(ct);

    public async Task<IActionResult> OnPostCreateAsync([Bind(Prefix = nameof(Input))] InputModel input, CancellationToken ct)
    {
        Input = input;
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        if (input.ExpiresOn is { } on && on < today)
            ModelState.AddModelError($"{nameof(Input)}.{nameof(InputModel.ExpiresOn)}", "Pick today or a later date.");
        if (input.CreditLimitUsd is { } usd && decimal.Round(usd, 2) != usd)
            ModelState.AddModelError($"{nameof(Input)}.{nameof(InputModel.CreditLimitUsd)}", "Use at most 2 decimals, e.g. 25.50.");
        var requested = input.AllowedModels.Where(m => !string.IsNullOrWhiteSpace(m)).Distinct(StringComparer.Ordinal).ToList();
        if (requested.Count > 0)
        {
            var known = (await catalog.GetAllAsync(ct)).Select(m => m.Id);
            var unknown = requested.Except(known, StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
                ModelState.AddModelError($"{nameof(Input)}.{nameof(InputModel.AllowedModels)}", $"Unknown model: {string.Join(", ", unknown)}.");
        }
        if (!ModelState.IsValid)
        {
            await LoadAsync(ct);
            return Page();
        }

        // The key works through the whole chosen day (UTC) and stops at the midnight after it.
        DateTimeOffset? expiresAt = input.ExpiresOn is { } day ? new DateTimeOffset(day.AddDays(1), TimeOnly.MinValue, TimeSpan.Zero) : null;
        var limits = new KeyLimits(expiresAt, input.CreditLimitUsd is { } limit ? Money.FromUsd(limit) : null,
            input.RequestsPerMinute, input.TokensPerMinute, requested);
        var (_, secret) = await issuer.IssueAsync(Org.Id, Org.UserId, input.Name, limits, ct);
        NewSecret = secret;
        NewSecretName = input.Name.Trim();
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostRenameAsync(Guid id, [Bind(Prefix = "Rename")] RenameModel rename, CancellationToken ct)
    {
        Rename = rename;
        if (!ModelState.IsValid)
        {
            if (!await OwnsAsync(id, ct)) return NotFound();
            RenameFailedFor = id;
            await LoadAsync(ct);
            return Page();
        }
        if (!await issuer.RenameAsync(Org.Keys, id, rename.Name, ct)) return NotFound();
        StatusMessage = $"Renamed the key to “{rename.Name.Trim()}”.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostRotateAsync(Guid id, string? grace, CancellationToken ct)
    {
        if (grace is null || !GraceChoices.TryGetValue(grace, out var choice)) return BadRequest();
        var now = clock.GetUtcNow();
        // Null when the key is not this user's or not in use (revoked, expired or already rotated): nothing was changed.
        if (await issuer.RotateAsync(Org.Keys, id, choice.Grace, ct) is not { } rotated) return NotFound();
        NewSecret = rotated.Secret;
        NewSecretName = rotated.Key.Name;
        StatusMessage = choice.Grace == TimeSpan.Zero
            ? "Rotated: the old key no longer works."
            : $"Rotated: the old key keeps working until {Format(now + choice.Grace)}.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostRevokeAsync(Guid id, CancellationToken ct)
    {
        if (!await issuer.RevokeAsync(Org.Keys, id, ct)) return NotFound();
        StatusMessage = "Revoked: the key no longer works.";
        return RedirectToPage();
    }

    public static string Format(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private Task<bool> OwnsAsync(Guid id, CancellationToken ct) => issuer.InScope(Org.Keys).AsNoTracking().AnyAsync(k => k.Id == id, ct);

    private async Task LoadAsync(CancellationToken ct)
    {
        // The page may carry a secret: no browser or proxy keeps a copy (the back button refetches instead).
        Response.Headers.CacheControl = "no-store";
        Now = clock.GetUtcNow();
        Keys = await (
            from k in issuer.InScope(Org.Keys).AsNoTracking()
            join u in db.Users on k.CreatedBy equals u.Id into creators
            from creator in creators.DefaultIfEmpty()
            orderby k.CreatedAt descending
            select new KeyRow(k.Id, k.Name, k.Prefix, k.Last4, k.CreatedAt, k.LastUsedAt, k.ExpiresAt, k.RevokedAt, k.ReplacedById != null,
                k.CreditLimitMicros, k.SpentMicros, k.RequestsPerMinute, k.TokensPerMinute, k.AllowedModels, creator != null ? creator.Email : null))
            .ToListAsync(ct);
        Models = (await catalog.GetAllAsync(ct)).Select(m => new ModelOption(m.Id, m.Name)).ToList();
    }

    public enum KeyState { Active, Expiring, Expired, Revoked }

    public sealed record KeyRow(
        Guid Id, string Name, string Prefix, string Last4, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? ExpiresAt,
        DateTimeOffset? RevokedAt, bool Rotated, long? CreditLimitMicros, long SpentMicros, int? RequestsPerMinute, int? TokensPerMinute,
        List<string> AllowedModels, string? CreatorEmail = null)
    {
        /// <summary>What the list shows instead of the key: <c>ag_test_AbCd…wxyz</c>.</summary>
        public string Masked => $"{Prefix}…{Last4}";

        public KeyState StateAt(DateTimeOffset now) =>
            RevokedAt is not null ? KeyState.Revoked
            : ExpiresAt <= now ? KeyState.Expired
            : Rotated ? KeyState.Expiring
            : KeyState.Active;
    }

    public sealed record ModelOption(string Id, string Name);

    public sealed class InputModel
    {
        [Required(ErrorMessage = "Give the key a name.")]
        [StringLength(64, ErrorMessage = "Use at most 64 characters.")]
        [Display(Name = "Name")]
        public string Name { get; set; } = "";

        [DataType(DataType.Date)]
        [Display(Name = "Expires after")]
        public DateOnly? ExpiresOn { get; set; }

        [Range(typeof(decimal), "0.01", "1000000", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true, ErrorMessage = "Enter an amount from 0.01 to 1,000,000.")]
        [Display(Name = "Credit limit in USD")]
        public decimal? CreditLimitUsd { get; set; }

        [Range(1, 1_000_000, ErrorMessage = "Enter a number from 1 to 1,000,000.")]
        [Display(Name = "Requests per minute")]
        public int? RequestsPerMinute { get; set; }

        [Range(1, 1_000_000_000, ErrorMessage = "Enter a number from 1 to 1,000,000,000.")]
        [Display(Name = "Tokens per minute")]
        public int? TokensPerMinute { get; set; }

        [Display(Name = "Allowed models (none selected: all)")]
        public List<string> AllowedModels { get; set; } = [];
    }

    public sealed class RenameModel
    {
        [Required(ErrorMessage = "Give the key a name.")]
        [StringLength(64, ErrorMessage = "Use at most 64 characters.")]
        public string Name { get; set; } = "";
    }
}
