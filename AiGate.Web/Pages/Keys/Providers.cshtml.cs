using System.ComponentModel.DataAnnotations;
using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Byok;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Vault;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Keys;

/// <summary>
/// The user's own provider keys (BYOK, issue 14): add an OpenAI, Anthropic or Gemini key, or an OpenAI-compatible
/// endpoint (base URL + key + label); test, delete, and choose per key whether a refused key falls back to the platform's
/// keys. A key is sealed under the account's DEK as soon as it arrives and never shown again (only its last 4): the form
/// never echoes it, not even when the add fails. The keys are the current organization's (owners and admins manage
/// them; every member's calls use them). Every query and command filters by organization.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.ManageProviderKeys)]
public sealed class ProvidersModel(AppDbContext db, ByokKeyAdmin admin, SecretVault vault, OrgContext orgs, IOptions<BillingOptions> billing, IOptions<ByokOptions> options)
    : PageModel
{
    public IReadOnlyList<KeyRow> Keys { get; private set; } = [];
    public InputModel Input { get; set; } = new();
    public bool VaultConfigured => vault.IsConfigured;
    public decimal FeePercent => billing.Value.ByokFeePercent;
    public decimal CustomFeeUsdPerMTok => billing.Value.ByokCustomFeePerMTokMicros / 1_000_000m;
    public int MaxKeys => options.Value.MaxKeysPerAccount;

    [TempData] public string? StatusMessage { get; set; }

    public Task OnGetAsync(CancellationToken ct) => LoadAsync(ct);

    public async Task<IActionResult> OnPostAddAsync([Bind(Prefix = nameof(Input))] InputModel input, CancellationToken ct)
    {
        Input = input;
        var secret = input.Secret;
        input.Secret = "";   // never written back into the form
        ModelState.Remove($"{nameof(Input)}.{nameof(InputModel.Secret)}");
        if (string.IsNullOrWhiteSpace(secret))
            ModelState.AddModelError($"{nameof(Input)}.{nameof(InputModel.Secret)}", "Paste the key.");
        if (ModelState.IsValid)
        {
            var (_, error) = await admin.AddAsync(orgs.Current.Id, input.Kind, input.Label, input.BaseUrl, secret, input.FallbackToPlatform, ct);
            if (error is null)
            {
                StatusMessage = $"Saved your {input.Kind} key (ending in {Features.Providers.ProviderKey.LastFour(secret.Trim())}). Calls use it within seconds.";
                return RedirectToPage();
            }
            ModelState.AddModelError("", error);
        }
        await LoadAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(Guid id, CancellationToken ct)
    {
        if (!await admin.DeleteAsync(orgs.Current.Id, id, ct)) return NotFound();
        StatusMessage = "Deleted the key: calls use the platform's keys again.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostFallbackAsync(Guid id, bool fallback, CancellationToken ct)
    {
        if (!await admin.SetFallbackAsync(orgs.Current.Id, id, fallback, ct)) return NotFound();
        StatusMessage = fallback ? "If the provider refuses this key, calls now fall back to the platform's keys (at the normal price)."
            : "If the provider refuses this key, calls now fail with an error instead of using the platform's keys.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostTestAsync(Guid id, CancellationToken ct)
    {
        if (await admin.TestAsync(orgs.Current.Id, id, ct) is not { } result) return NotFound();
        StatusMessage = result;
        return RedirectToPage();
    }

    public static string Format(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private async Task LoadAsync(CancellationToken ct)
    {
        Response.Headers.CacheControl = "no-store";
        var orgId = orgs.Current.Id;
        Keys = await db.Set<UserProviderKey>().AsNoTracking()
            .Where(k => k.UserId == orgId)
            .OrderBy(k => k.CreatedAt)
            .Select(k => new KeyRow(k.Id, k.Kind, k.Label, k.BaseUrl, k.Last4, k.FallbackToPlatform, k.CreatedAt, k.LastErrorAt, k.LastError))
            .ToListAsync(ct);
    }

    public sealed record KeyRow(Guid Id, string Kind, string Label, string? BaseUrl, string Last4, bool FallbackToPlatform, DateTimeOffset CreatedAt,
        DateTimeOffset? LastErrorAt, string? LastError)
    {
        public string KindName => Kind switch
        {
            ByokKinds.OpenAi => "OpenAI", ByokKinds.Anthropic => "Anthropic", ByokKinds.Gemini => "Gemini", _ => "OpenAI-compatible endpoint",
        };
    }

    public sealed class InputModel
    {
        [Required(ErrorMessage = "Pick a provider.")]
        [Display(Name = "Provider")]
        public string Kind { get; set; } = ByokKinds.OpenAi;

        [StringLength(32, ErrorMessage = "Use at most 32 characters.")]
        [Display(Name = "Label")]
        public string? Label { get; set; }

        [StringLength(500, ErrorMessage = "Use at most 500 characters.")]
        [Display(Name = "Base URL (OpenAI-compatible endpoints only)")]
        public string? BaseUrl { get; set; }

        [Display(Name = "Key")]
        public string Secret { get; set; } = "";

        [Display(Name = "Fall back to platform keys if my key fails")]
        public bool FallbackToPlatform { get; set; }
    }
}
