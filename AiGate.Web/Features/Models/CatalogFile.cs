using System.Text.Json;
using System.Text.Json.Serialization;

namespace AiGate.Web.Features.Models;

/// <summary>
/// The catalogue as a JSON file (export, import): models with their routes, prices in USD per million
/// tokens as JSON numbers with at most six decimals (exactly the stored micro-USD), the margin as a
/// multiplier (1.8) or null for the default. A price list from a provider becomes one import.
/// </summary>
public sealed record CatalogFile(List<CatalogFileModel>? Models)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>The file, or a message saying where it is not what we expect.</summary>
    public static CatalogFile Parse(string text)
    {
        try
        {
            return JsonSerializer.Deserialize<CatalogFile>(text, Json) ?? throw new CatalogValidationException([new("file", "The file is empty.")]);
        }
        catch (JsonException ex)
        {
            var where = ex.Path is null ? "" : $" at {ex.Path}" + (ex.LineNumber is { } line ? $" (line {line + 1})" : "");
            throw new CatalogValidationException([new("file", $"The file is not a catalogue in JSON{where}: {FirstSentence(ex.Message)}")]);
        }
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message : message[..(end + 1)];
    }
}

public sealed record CatalogFileModel(
    string? Id, string? Name, string? Kind, string? OwnedBy, int ContextLength, int MaxOutputTokens,
    decimal? InputUsdPerMtok, decimal? OutputUsdPerMtok, decimal? CachedInputUsdPerMtok, decimal? Margin,
    List<string>? Aliases, bool? Enabled, List<CatalogFileRoute>? Routes,
    List<CatalogFileImagePrice>? ImagePrices = null, decimal? UsdPerMchar = null, decimal? UsdPerMinute = null, decimal? UsdPerRequest = null,
    decimal? AudioInputUsdPerMtok = null, decimal? AudioOutputUsdPerMtok = null)
{
    public static CatalogFileModel Of(ModelSpec m, IEnumerable<RouteSpec> routes)
    {
        var p = m.Prices;
        var images = ImagePriceTable.Parse(p.ImagePrices, out _) ?? [];
        return new(
            m.Id, m.Name, m.Kind, m.OwnedBy, m.ContextLength, m.MaxOutputTokens,
            Usd(m.InputMicrosPerMTok), Usd(m.OutputMicrosPerMTok), Usd(m.CachedInputMicrosPerMTok),
            m.MarginBasisPoints is { } bp ? bp / 10_000m : null, [.. m.Aliases], m.Enabled,
            [.. routes.Select(r => new CatalogFileRoute(r.Provider, r.UpstreamModel, r.Priority, r.Weight, r.Enabled))],
            images.Count == 0 ? null : [.. images.Select(i => new CatalogFileImagePrice(i.Size, i.Quality, i.Micros / 1_000_000m))],
            Usd(p.MicrosPerMChar), Usd(p.MicrosPerMinute), Usd(p.MicrosPerRequest), Usd(p.AudioInputMicrosPerMTok), Usd(p.AudioOutputMicrosPerMTok));
    }

    /// <summary>The spec, or what keeps this row from being one (a price with more than six decimals, a margin with more than four).</summary>
    public (ModelSpec? Spec, List<string> Errors) ToSpec()
    {
        var errors = new List<string>();
        var input = Micros(InputUsdPerMtok, "input_usd_per_mtok", errors);
        var output = Micros(OutputUsdPerMtok, "output_usd_per_mtok", errors);
        var cached = Micros(CachedInputUsdPerMtok, "cached_input_usd_per_mtok", errors);
        int? margin = null;
        if (Margin is { } m)
        {
            if (m < 1 || m > 100 || decimal.Round(m, 4) != m) errors.Add("margin must be a multiplier between 1 and 100 with at most 4 decimals (1.8), or null for the default.");
            else margin = (int)(m * 10_000);
        }
        var images = new List<ImagePrice>();
        foreach (var image in ImagePrices ?? [])
            if (Micros(image?.Usd, "image_prices[].usd", errors) is { } micros && image is { Size: { } size, Quality: { } quality }) images.Add(new(size, quality, micros));
            else if (image?.Usd is not null) errors.Add("image_prices rows need a size and a quality.");
        var media = new MediaPriceSpec(ImagePriceTable.ToJson(images), Micros(UsdPerMchar, "usd_per_mchar", errors), Micros(UsdPerMinute, "usd_per_minute", errors),
            Micros(UsdPerRequest, "usd_per_request", errors), Micros(AudioInputUsdPerMtok, "audio_input_usd_per_mtok", errors),
            Micros(AudioOutputUsdPerMtok, "audio_output_usd_per_mtok", errors));
        if (Id is null) errors.Add("id is required.");
        if (errors.Count > 0) return (null, errors);
        return (new ModelSpec(Id!, Name ?? "", Kind ?? "chat", OwnedBy ?? Id!.Split('/')[0], ContextLength, MaxOutputTokens,
            input, output, cached, margin, Aliases ?? [], Enabled ?? true, media), errors);
    }

    private static decimal? Usd(long? micros) => micros is { } m ? m / 1_000_000m : null;

    private static long? Micros(decimal? usd, string field, List<string> errors)
    {
        if (usd is not { } value) return null;
        if (value < 0 || value > 100_000 || decimal.Round(value, 6) != value)
        {
            errors.Add($"{field} must be between 0 and 100000 USD with at most 6 decimals.");
            return null;
        }
        return (long)(value * 1_000_000m);
    }
}

/// <summary>One row of an image model's price table in the file: USD per image.</summary>
public sealed record CatalogFileImagePrice(string? Size, string? Quality, decimal? Usd);

public sealed record CatalogFileRoute(string? Provider, string? UpstreamModel, int Priority, int? Weight, bool? Enabled);
