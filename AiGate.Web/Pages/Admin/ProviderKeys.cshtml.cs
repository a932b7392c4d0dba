using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Providers;
using AiGate.Web.Features.Vault;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// The platform's provider keys (issue 14): per provider, the configuration key and the vault's keys with their
/// label, last 4 characters, status, dates and last error; add (the key is posted once and never shown again),
/// retire, re-enable. Every change is audited and reaches every instance within seconds.
/// </summary>
public sealed class ProviderKeysModel(AppDbContext db, ProviderRegistry registry, ProviderKeyRing ring, ProviderKeyAdmin keys, SecretVault vault) : PageModel
{
    public IReadOnlyList<ProviderSection> Providers { get; private set; } = [];
    public bool VaultConfigured => vault.IsConfigured;
    [BindProperty] public InputModel Input { get; set; } = new();
    [TempData] public string? Notice { get; set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var rows = await db.Set<ProviderKeyRow>().AsNoTracking().Where(k => k.Status != ProviderKeyStatus.Retired)
            .OrderBy(k => k.Provider).ThenBy(k => k.CreatedAt)
            .Select(k => new KeyRow(k.Id, k.Provider, k.Label, k.Last4, k.Status, k.CreatedAt, k.CreatedBy, k.LastUsedAt, k.LastErrorAt, k.LastError))
            .ToListAsync(ct);
        Providers = [.. registry.ByName.Values.Where(p => p.Kind != ProviderKind.Echo).OrderBy(p => p.Name, StringComparer.Ordinal).Select(p =>
        {
            var configInUse = ring.Active(p.Name).Any(k => k.Id is null);
            var config = string.IsNullOrEmpty(p.ApiKey) ? null
                : new ConfigKeyRow(ProviderKey.LastFour(p.ApiKey), configInUse ? ProviderKeyStatus.Active : ProviderKeyStatus.Disabled);
            return new ProviderSection(p.Name, config, [.. rows.Where(r => r.Provider == p.Name)]);
        })];
    }

    public async Task<IActionResult> OnPostAddAsync(CancellationToken ct)
    {
        if (!ModelState.IsValid)
        {
            Input.Secret = "";   // never echoed back into the form
            await OnGetAsync(ct);
            return Page();
        }
        var (_, error) = await keys.AddAsync(Input.Provider, Input.Label, Input.Secret, ct);
        if (error is not null)
        {
            ModelState.AddModelError("Input.Secret", error);
            Input.Secret = "";
            await OnGetAsync(ct);
            return Page();
        }
        Notice = $"Key added to {Input.Provider.Trim()} (ending in {ProviderKey.LastFour(Input.Secret.Trim())}); every instance uses it within seconds.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostRetireAsync(Guid id, CancellationToken ct)
    {
        Notice = await keys.RetireAsync(id, ct) ?? "Key retired; no instance uses it any more.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostEnableAsync(Guid id, CancellationToken ct)
    {
        Notice = await keys.EnableAsync(id, ct) ?? "Key re-enabled.";
        return RedirectToPage();
    }

    public sealed record ProviderSection(string Name, ConfigKeyRow? ConfigKey, IReadOnlyList<KeyRow> Keys);
    public sealed record ConfigKeyRow(string Last4, string Status);
    public sealed record KeyRow(Guid Id, string Provider, string Label, string Last4, string Status, DateTimeOffset CreatedAt, string CreatedBy,
        DateTimeOffset? LastUsedAt, DateTimeOffset? LastErrorAt, string? LastError);

    public sealed class InputModel
    {
        [Required, StringLength(64)] public string Provider { get; set; } = "";
        [StringLength(100)] public string? Label { get; set; }
        [Required(ErrorMessage = "Paste the key."), StringLength(ProviderKeyAdmin.MaxSecretLength, MinimumLength = 8)]
        public string Secret { get; set; } = "";
    }
}
