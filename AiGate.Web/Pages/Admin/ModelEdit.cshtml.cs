using System.Globalization;
using AiGate.Web.Data;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Admin;

/// <summary>
/// Creates a model (no <c>id</c>) or edits one (<c>?id=openai/gpt-4o</c>): its fields and prices (USD per million
/// tokens in the form, integer micro-USD in the database), and its routes, each with a test button.
/// </summary>
public sealed class ModelEditModel(AppDbContext db, CatalogAdmin admin, RouteTester tester, ProviderRegistry providers, IOptions<ModelsOptions> options)
    : PageModel
{
    [BindProperty] public ModelInput Input { get; set; } = new();
    public string? Id { get; private set; }
    public CatalogModel? Existing { get; private set; }
    public IReadOnlyList<string> ConfiguredProviders => [.. providers.ByName.Keys.Order(StringComparer.Ordinal)];
    public int DefaultMarginBasisPoints => options.Value.DefaultMarginBasisPoints;
    public IReadOnlyList<FieldError> Errors { get; private set; } = [];
    [TempData] public string? Notice { get; set; }
    [TempData] public string? TestOutcome { get; set; }

    public async Task<IActionResult> OnGetAsync(string? id, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(id)) return Page();
        if (!await LoadAsync(id, ct)) return NotFound();
        Input = ModelInput.Of(Existing!);
        return Page();
    }

    /// <summary>Saves the form: creates when there is no <c>id</c>, updates otherwise.</summary>
    public async Task<IActionResult> OnPostAsync(string? id, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(id) && !await LoadAsync(id, ct)) return NotFound();
        var (spec, errors) = Input.ToSpec(id);
        if (spec is not null)
        {
            try
            {
                if (Existing is null) await admin.CreateModelAsync(spec, ct);
                else await admin.UpdateModelAsync(Existing.Id, spec, null, ct);
                Notice = Existing is null ? $"Created {spec.Id.Trim()}." : $"Saved {Existing.Id}.";
                return RedirectToPage(new { id = Existing?.Id ?? spec.Id.Trim() });
            }
            catch (CatalogValidationException ex)
            {
                errors = [.. ex.Errors];
            }
        }
        Errors = errors;
        return Page();
    }

    public async Task<IActionResult> OnPostAddRouteAsync(string id, RouteInput route, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct)) return NotFound();
        try
        {
            var spec = route.ToSpec(out var errors);
            if (spec is null) throw new CatalogValidationException(errors);
            await admin.AddRouteAsync(id, spec, ct);
            Notice = $"Added the route to {spec.UpstreamModel} on {spec.Provider}.";
            return RedirectToPage(new { id });
        }
        catch (CatalogValidationException ex)
        {
            Errors = ex.Errors;
            Input = ModelInput.Of(Existing!);
            return Page();
        }
    }

    public async Task<IActionResult> OnPostSaveRouteAsync(string id, long routeId, RouteInput route, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct) || Existing!.Routes.All(r => r.Id != routeId)) return NotFound();
        try
        {
            var spec = route.ToSpec(out var errors);
            if (spec is null) throw new CatalogValidationException(errors);
            await admin.UpdateRouteAsync(routeId, spec, ct);
            Notice = $"Saved the route to {spec.UpstreamModel} on {spec.Provider}.";
            return RedirectToPage(new { id });
        }
        catch (CatalogValidationException ex)
        {
            Errors = ex.Errors;
            Input = ModelInput.Of(Existing!);
            return Page();
        }
    }

    /// <summary>A 1-token call through this one route; no one is charged.</summary>
    public async Task<IActionResult> OnPostTestRouteAsync(string id, long routeId, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct) || Existing!.Routes.FirstOrDefault(r => r.Id == routeId) is not { } route) return NotFound();
        var result = await tester.TestAsync(Existing, route, ct);
        TestOutcome = string.Create(CultureInfo.InvariantCulture,
            $"{route.Provider} → {route.UpstreamModel}: {(result.Ok ? "OK" : "failed")} in {result.LatencyMs} ms. {(result.Ok ? "Answer: " : "")}{result.Answer}");
        return RedirectToPage(new { id });
    }

    private async Task<bool> LoadAsync(string id, CancellationToken ct)
    {
        Existing = await db.Set<CatalogModel>().AsNoTracking().Include(m => m.Routes).SingleOrDefaultAsync(m => m.Id == id, ct);
        if (Existing is null) return false;
        Existing.Routes = [.. Existing.Routes.OrderBy(r => r.Priority).ThenBy(r => r.Id)];
        Id = Existing.Id;
        return true;
    }

    /// <summary>The form: prices in USD per million tokens as typed, parsed with a message per field.</summary>
    public sealed class ModelInput
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string Kind { get; set; } = "chat";
        public string OwnedBy { get; set; } = "";
        public int ContextLength { get; set; } = 128_000;
        public int MaxOutputTokens { get; set; } = 4_096;
        public string? Aliases { get; set; }
        public string? InputPrice { get; set; }
        public string? OutputPrice { get; set; }
        public string? CachedPrice { get; set; }
        /// <summary>Image models: one "size quality USD-per-image" per line.</summary>
        public string? ImagePrices { get; set; }
        /// <summary>Speech: USD per 1M input characters.</summary>
        public string? SpeechPrice { get; set; }
        /// <summary>Transcription: USD per minute of audio.</summary>
        public string? MinutePrice { get; set; }
        /// <summary>Moderation: USD per request; empty = free.</summary>
        public string? RequestPrice { get; set; }
        /// <summary>Realtime: USD per 1M audio input / output tokens.</summary>
        public string? AudioInputPrice { get; set; }
        public string? AudioOutputPrice { get; set; }
        /// <summary>A multiplier (1.8); empty = the default.</summary>
        public string? Margin { get; set; }
        public bool Enabled { get; set; } = true;

        public static ModelInput Of(CatalogModel m) => new()
        {
            Id = m.Id, Name = m.Name, Kind = m.Kind, OwnedBy = m.OwnedBy, ContextLength = m.ContextLength, MaxOutputTokens = m.MaxOutputTokens,
            Aliases = string.Join(", ", m.Aliases), InputPrice = Usd(m.InputMicrosPerMTok), OutputPrice = Usd(m.OutputMicrosPerMTok),
            CachedPrice = Usd(m.CachedInputMicrosPerMTok), Margin = m.MarginBasisPoints is { } bp ? (bp / 10_000m).ToString("0.####", CultureInfo.InvariantCulture) : null,
            Enabled = m.Enabled,
            ImagePrices = ImagePriceTable.ToLines(ImagePriceTable.Parse(m.ImagePrices, out _) ?? []), SpeechPrice = Usd(m.MicrosPerMChar),
            MinutePrice = Usd(m.MicrosPerMinute), RequestPrice = Usd(m.MicrosPerRequest), AudioInputPrice = Usd(m.AudioInputMicrosPerMTok),
            AudioOutputPrice = Usd(m.AudioOutputMicrosPerMTok),
        };

        public (ModelSpec? Spec, List<FieldError> Errors) ToSpec(string? existingId)
        {
            var errors = new List<FieldError>();
            var input = Micros(InputPrice, "InputPrice", "Input price", errors);
            var output = Micros(OutputPrice, "OutputPrice", "Output price", errors);
            var cached = Micros(CachedPrice, "CachedPrice", "Cached input price", errors);
            var images = ImagePriceTable.FromLines(ImagePrices, out var imageError);
            if (images is null) errors.Add(new("ImagePrices", imageError!));
            var media = new MediaPriceSpec(ImagePriceTable.ToJson(images ?? []), Micros(SpeechPrice, "SpeechPrice", "Speech price", errors, "per million characters"),
                Micros(MinutePrice, "MinutePrice", "Transcription price", errors, "per minute"), Micros(RequestPrice, "RequestPrice", "Moderation price", errors, "per request"),
                Micros(AudioInputPrice, "AudioInputPrice", "Audio input price", errors), Micros(AudioOutputPrice, "AudioOutputPrice", "Audio output price", errors));
            int? margin = null;
            if (!string.IsNullOrWhiteSpace(Margin))
            {
                if (!decimal.TryParse(Margin.Trim(), NumberStyles.Number, CultureInfo.InvariantCulture, out var m) || m < 1 || m > 100 || decimal.Round(m, 4) != m)
                    errors.Add(new("Margin", "Margin must be a multiplier between 1 and 100 with at most 4 decimals (e.g. 1.8), or empty for the default."));
                else margin = (int)(m * 10_000);
            }
            var id = existingId ?? Id ?? "";
            var spec = new ModelSpec(id, Name ?? "", Kind ?? "", string.IsNullOrWhiteSpace(OwnedBy) ? id.Split('/')[0] : OwnedBy, ContextLength, MaxOutputTokens,
                input, output, cached, margin, [.. (Aliases ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)], Enabled, media);
            errors.AddRange(CatalogAdmin.Validate(spec with { Id = spec.Id.Trim(), Name = spec.Name.Trim(), Kind = spec.Kind.Trim(), OwnedBy = spec.OwnedBy.Trim() }));
            return (errors.Count == 0 ? spec : null, errors);
        }

        private static string? Usd(long? micros) => micros is { } m ? (m / 1_000_000m).ToString("0.######", CultureInfo.InvariantCulture) : null;

        private static long? Micros(string? text, string field, string label, List<FieldError> errors, string unit = "per million tokens")
        {
            if (string.IsNullOrWhiteSpace(text)) return null;
            if (!decimal.TryParse(text.Trim().TrimStart('$'), NumberStyles.Number, CultureInfo.InvariantCulture, out var usd) || usd < 0 || usd > 100_000 || decimal.Round(usd, 6) != usd)
            {
                errors.Add(new(field, $"{label} must be an amount in USD {unit} between 0 and 100000, with at most 6 decimals (e.g. 2.50)."));
                return null;
            }
            return (long)(usd * 1_000_000m);
        }
    }

    public sealed class RouteInput
    {
        public string Provider { get; set; } = "";
        public string UpstreamModel { get; set; } = "";
        public int Priority { get; set; }
        public int Weight { get; set; } = 1;
        public bool Enabled { get; set; } = true;

        public RouteSpec? ToSpec(out List<FieldError> errors)
        {
            var spec = new RouteSpec(Provider?.Trim() ?? "", UpstreamModel?.Trim() ?? "", Priority, Weight, Enabled);
            errors = [.. CatalogAdmin.Validate(spec)];
            return errors.Count == 0 ? spec : null;
        }
    }
}
