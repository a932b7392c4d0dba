using System.Text;
using AiGate.Web.Data;
using AiGate.Web.Features.Models;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// The catalogue: every model (enabled or not) with its provider price and the price users pay (× margin),
/// filters, and the JSON import (paste or upload → diff → apply in one transaction) and export.
/// </summary>
public sealed class ModelsModel(AppDbContext db, CatalogAdmin admin, IOptions<ModelsOptions> options, ModelCatalog catalog) : PageModel
{
    private const int MaxImportBytes = 2 * 1024 * 1024;

    [BindProperty(SupportsGet = true)] public string? Q { get; set; }
    [BindProperty(SupportsGet = true)] public string? Provider { get; set; }
    [BindProperty(SupportsGet = true)] public string? Kind { get; set; }
    /// <summary>"yes", "no" or empty (all).</summary>
    [BindProperty(SupportsGet = true)] public string? Enabled { get; set; }
    [BindProperty(SupportsGet = true)] public bool Unpriced { get; set; }

    public IReadOnlyList<ModelRow> Models { get; private set; } = [];
    public IReadOnlyList<string> Providers { get; private set; } = [];
    public int UnpricedCount { get; private set; }

    /// <summary>How a route reads in the list: its provider, and why it is not used when it is not.</summary>
    public string RouteLabel(ModelRoute r) =>
        r.Provider + (!catalog.ConfiguredProviders.Contains(r.Provider) ? " (not configured)"
            : catalog.DisabledProviders.Contains(r.Provider) ? " (provider disabled)" : !r.Enabled ? " (off)" : "");
    public int DefaultMarginBasisPoints => options.Value.DefaultMarginBasisPoints;
    public IReadOnlyList<CatalogDiffLine>? Diff { get; private set; }
    public IReadOnlyList<string> ImportErrors { get; private set; } = [];
    /// <summary>The previewed file, carried to the apply form.</summary>
    public string? ImportJson { get; private set; }
    [TempData] public string? Notice { get; set; }

    public Task OnGetAsync(CancellationToken ct) => LoadAsync(ct);

    public async Task<IActionResult> OnGetExportAsync(CancellationToken ct)
    {
        var file = await admin.ExportAsync(ct);
        return File(Encoding.UTF8.GetBytes(file.ToJson()), "application/json", "aigate-models.json");
    }

    /// <summary>Shows what the pasted or uploaded file would change; changes nothing.</summary>
    public async Task<IActionResult> OnPostPreviewAsync(string? json, IFormFile? upload, CancellationToken ct)
    {
        var text = await ReadImportAsync(json, upload, ct);
        if (text is not null)
        {
            try
            {
                Diff = await admin.DiffAsync(CatalogFile.Parse(text), ct);
                ImportJson = text;
            }
            catch (CatalogValidationException ex)
            {
                ImportErrors = [.. ex.Errors.Select(e => e.Message)];
            }
        }
        await LoadAsync(ct);
        return Page();
    }

    /// <summary>Applies the previewed file in one transaction; any bad row changes nothing.</summary>
    public async Task<IActionResult> OnPostImportAsync(string? json, CancellationToken ct)
    {
        var text = await ReadImportAsync(json, null, ct);
        if (text is not null)
        {
            try
            {
                var applied = await admin.ImportAsync(CatalogFile.Parse(text), ct);
                Notice = $"Imported: {applied.Count(l => l.Action == "create")} created, {applied.Count(l => l.Action == "update")} updated, "
                    + $"{applied.Count(l => l.Action == "unchanged")} unchanged.";
                return RedirectToPage();
            }
            catch (CatalogValidationException ex)
            {
                ImportErrors = [.. ex.Errors.Select(e => e.Message)];
            }
        }
        await LoadAsync(ct);
        return Page();
    }

    private async Task<string?> ReadImportAsync(string? json, IFormFile? upload, CancellationToken ct)
    {
        if (upload is { Length: > 0 })
        {
            if (upload.Length > MaxImportBytes)
            {
                ImportErrors = ["The file is larger than 2 MB."];
                return null;
            }
            using var reader = new StreamReader(upload.OpenReadStream(), Encoding.UTF8);
            return await reader.ReadToEndAsync(ct);
        }
        if (string.IsNullOrWhiteSpace(json))
        {
            ImportErrors = ["Paste the catalogue JSON or choose a file."];
            return null;
        }
        if (json.Length > MaxImportBytes)
        {
            ImportErrors = ["The JSON is larger than 2 MB."];
            return null;
        }
        return json;
    }

    private async Task LoadAsync(CancellationToken ct)
    {
        var all = await db.Set<CatalogModel>().AsNoTracking().Include(m => m.Routes).OrderBy(m => m.Id).ToListAsync(ct);
        Providers = [.. all.SelectMany(m => m.Routes.Select(r => r.Provider)).Distinct().Order(StringComparer.Ordinal)];
        UnpricedCount = all.Count(m => m.InputMicrosPerMTok is null || m.OutputMicrosPerMTok is null);
        IEnumerable<CatalogModel> rows = all;
        if (!string.IsNullOrWhiteSpace(Q))
        {
            var q = Q.Trim();
            rows = rows.Where(m => m.Id.Contains(q, StringComparison.OrdinalIgnoreCase) || m.Name.Contains(q, StringComparison.OrdinalIgnoreCase)
                || m.Aliases.Any(a => a.Contains(q, StringComparison.OrdinalIgnoreCase)));
        }
        if (!string.IsNullOrWhiteSpace(Provider)) rows = rows.Where(m => m.OwnedBy == Provider || m.Routes.Any(r => r.Provider == Provider));
        if (!string.IsNullOrWhiteSpace(Kind)) rows = rows.Where(m => m.Kind == Kind);
        if (Enabled is "yes" or "no") rows = rows.Where(m => m.Enabled == (Enabled == "yes"));
        if (Unpriced) rows = rows.Where(m => m.InputMicrosPerMTok is null || m.OutputMicrosPerMTok is null);
        Models = [.. rows.Select(m => new ModelRow(m, Pricing(m, DefaultMarginBasisPoints), MediaPricing.Of(m, DefaultMarginBasisPoints)))];
    }

    /// <summary>The model's price as the gateway will charge it, or null when it is unpriced (and so not served).</summary>
    public static ModelPricing? Pricing(CatalogModel m, int defaultMargin) =>
        m.InputMicrosPerMTok is { } input && m.OutputMicrosPerMTok is { } output
            ? new ModelPricing(input, output, m.CachedInputMicrosPerMTok ?? input, m.MarginBasisPoints ?? defaultMargin)
            : null;

    public sealed record ModelRow(CatalogModel Model, ModelPricing? Pricing, MediaPricing Media)
    {
        /// <summary>Whether the price its kind is billed by is set (<see cref="ResolvedModel.IsPriced"/>).</summary>
        public bool IsPriced => new ResolvedModel(Model.Id, Model.Name, Model.Kind, Model.OwnedBy, 0, 0, Pricing, [], default, Media).IsPriced;
    }
}
