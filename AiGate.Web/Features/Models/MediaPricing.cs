using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;

namespace AiGate.Web.Features.Models;

/// <summary>The kinds of model the catalogue sells; the kind picks the endpoint that serves it and the price it needs.</summary>
public static class ModelKinds
{
    public const string Chat = "chat";
    public const string Embedding = "embedding";
    public const string Image = "image";
    public const string Speech = "speech";
    public const string Transcription = "transcription";
    public const string Moderation = "moderation";
    public const string Realtime = "realtime";

    public static readonly string[] All = [Chat, Embedding, Image, Speech, Transcription, Moderation, Realtime];

    /// <summary>Kinds priced in tokens (input and output per million): their prices are <see cref="ModelPricing"/>.</summary>
    public static bool IsTokenPriced(string kind) => kind is Chat or Embedding or Realtime;
}

/// <summary>One row of an image model's price table: list price per image of this size and quality, micro-USD.</summary>
public sealed record ImagePrice(string Size, string Quality, long Micros);

/// <summary>
/// An image model's price table as stored (<c>models.image_prices</c>, jsonb): a JSON array of
/// <c>{"size":"1024x1024","quality":"standard","micros":40000}</c>. Written in one canonical form (rows in the
/// given order, compact), so a catalogue file's table and the stored one compare equal when they are.
/// </summary>
public static class ImagePriceTable
{
    private const long MaxMicros = 1_000L * 1_000_000;

    /// <summary>The rows, or null with what is wrong (for the admin page and the catalogue file).</summary>
    public static List<ImagePrice>? Parse(string? json, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(json)) return [];
        List<ImagePrice>? rows;
        try
        {
            rows = JsonSerializer.Deserialize<List<ImagePrice>>(json, Json);
        }
        catch (JsonException)
        {
            error = "Image prices must be a JSON array of {\"size\",\"quality\",\"micros\"}.";
            return null;
        }
        return Validate(rows ?? [], out error) ? rows : null;
    }

    public static bool Validate(IReadOnlyList<ImagePrice> rows, out string? error)
    {
        error = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (row is null || string.IsNullOrWhiteSpace(row.Size) || string.IsNullOrWhiteSpace(row.Quality) || row.Size.Length > 32 || row.Quality.Length > 32)
                error = "Each image price needs a size (1024x1024) and a quality (standard, hd, low, medium, high).";
            else if (row.Micros is < 0 or > MaxMicros)
                error = "An image price must be between $0 and $1,000 per image.";
            else if (!seen.Add(Key(row.Size, row.Quality)))
                error = $"The image price for {row.Size} {row.Quality} is listed twice.";
            if (error is not null) return false;
        }
        return true;
    }

    /// <summary>The canonical stored form; null for an empty table.</summary>
    public static string? ToJson(IReadOnlyList<ImagePrice> rows) => rows.Count == 0 ? null : JsonSerializer.Serialize(rows, Json);

    /// <summary>The stored text in canonical form (jsonb hands back its own spacing and key order).</summary>
    public static string? Canonical(string? json) => Parse(json, out _) is { } rows ? ToJson(rows) : json;

    /// <summary>The admin page's text form: one "size quality usd" per line ("1024x1024 standard 0.04").</summary>
    public static string ToLines(IReadOnlyList<ImagePrice> rows) =>
        string.Join('\n', rows.Select(r => $"{r.Size} {r.Quality} {(r.Micros / 1_000_000m).ToString(CultureInfo.InvariantCulture)}"));

    /// <summary>Parses <see cref="ToLines"/>; null with what is wrong.</summary>
    public static List<ImagePrice>? FromLines(string? text, out string? error)
    {
        error = null;
        var rows = new List<ImagePrice>();
        foreach (var raw in (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || !decimal.TryParse(parts[2].TrimStart('$'), NumberStyles.Number, CultureInfo.InvariantCulture, out var usd)
                || usd < 0 || decimal.Round(usd, 6) != usd || usd > 1_000)
            {
                error = $"Image price line '{raw}' must be: size quality USD-per-image with at most 6 decimals (1024x1024 standard 0.04).";
                return null;
            }
            rows.Add(new ImagePrice(parts[0], parts[1], (long)(usd * 1_000_000m)));
        }
        return Validate(rows, out error) ? rows : null;
    }

    public static string Key(string size, string quality) => size + " " + quality;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}

/// <summary>What a call costs: the user's charge (margin included) and the provider's list cost, micro-USD, each rounded up once.</summary>
public readonly record struct MediaCost(long ChargeMicros, long ProviderMicros);

/// <summary>
/// The non-token price units of a model (images, speech characters, audio minutes, moderation requests, realtime
/// audio tokens) and our margin. Like <see cref="ModelPricing"/>, the exact product of units, list price and margin
/// is computed in Int128 and rounded up once per request.
/// </summary>
public sealed record MediaPricing(
    FrozenDictionary<string, long> ImageMicros, IReadOnlyList<ImagePrice> ImagePrices, long? MicrosPerMChar, long? MicrosPerMinute,
    long? MicrosPerRequest, long? AudioInputPerMTok, long? AudioOutputPerMTok, int MarginBasisPoints)
{
    private const long BasisPoints = 10_000;

    public static MediaPricing Of(CatalogModel m, int margin)
    {
        var images = ImagePriceTable.Parse(m.ImagePrices, out _) ?? [];
        return new MediaPricing(images.ToFrozenDictionary(i => ImagePriceTable.Key(i.Size, i.Quality), i => i.Micros, StringComparer.Ordinal), images,
            m.MicrosPerMChar, m.MicrosPerMinute, m.MicrosPerRequest, m.AudioInputMicrosPerMTok, m.AudioOutputMicrosPerMTok, m.MarginBasisPoints ?? margin);
    }

    /// <summary>List price of one image of this size and quality, or null when the model does not sell it.</summary>
    public long? ImageListMicros(string size, string quality) => ImageMicros.TryGetValue(ImagePriceTable.Key(size, quality), out var micros) ? micros : null;

    /// <summary>The dearest quality this model sells at <paramref name="size"/> (what "auto" or no quality may turn out to be).</summary>
    public string? DearestQuality(string size)
    {
        string? best = null;
        var bestMicros = -1L;
        foreach (var price in ImagePrices)
            if (price.Size == size && price.Micros > bestMicros) (best, bestMicros) = (price.Quality, price.Micros);
        return best;
    }

    public MediaCost Images(long listMicrosPerImage, int count) => Cost((Int128)listMicrosPerImage * Math.Max(0, count), 1);
    public MediaCost Speech(long characters) => Cost((Int128)Math.Max(0, characters) * (MicrosPerMChar ?? 0), 1_000_000);
    public MediaCost Transcription(long seconds) => Cost((Int128)Math.Max(0, seconds) * (MicrosPerMinute ?? 0), 60);
    public MediaCost Moderation() => Cost(MicrosPerRequest ?? 0, 1);

    /// <summary>Our price (margin included) for a list price, rounded up: what the pricing page and /models show.</summary>
    public long Ours(long listMicros) => Apply(listMicros);

    /// <summary>
    /// The price units of a <paramref name="kind"/> model as people read them ("$0.040 / image 1024x1024 standard",
    /// "$15.00 / 1M characters", "$0.006 / minute"): ours (margin included) for the pricing page and /models, or the list prices.
    /// </summary>
    public List<string> Units(string kind, bool ours = true)
    {
        var units = new List<string>();
        long Price(long list) => ours ? Apply(list) : list;
        switch (kind)
        {
            case ModelKinds.Image:
                foreach (var image in ImagePrices) units.Add($"{Usd(Price(image.Micros))} / image {image.Size} {image.Quality}");
                break;
            case ModelKinds.Speech when MicrosPerMChar is { } chars:
                units.Add($"{Usd(Price(chars))} / 1M characters");
                break;
            case ModelKinds.Transcription when MicrosPerMinute is { } minute:
                units.Add($"{Usd(Price(minute))} / minute");
                break;
            case ModelKinds.Moderation:
                units.Add(MicrosPerRequest is { } request and > 0 ? $"{Usd(Price(request))} / request" : "free");
                break;
            case ModelKinds.Realtime when AudioInputPerMTok is { } audioIn && AudioOutputPerMTok is { } audioOut:
                units.Add($"{Usd(Price(audioIn))} / 1M audio input tokens");
                units.Add($"{Usd(Price(audioOut))} / 1M audio output tokens");
                break;
        }
        return units;
    }

    /// <summary>Dollars with cents, and the sub-cent digits a per-unit price needs ($0.040, $0.006, $15.00).</summary>
    public static string Usd(long micros)
    {
        var usd = micros / 1_000_000m;
        return "$" + usd.ToString(usd < 1 ? "0.000###" : "#,##0.00####", CultureInfo.InvariantCulture);
    }

    private MediaCost Cost(Int128 raw, long divisor)
    {
        var charge = (raw * MarginBasisPoints + divisor * BasisPoints - 1) / (divisor * BasisPoints);
        var provider = (raw + divisor - 1) / divisor;
        return new MediaCost(Clamp(charge), Clamp(provider));
    }

    private long Apply(long price) => (long)(((Int128)price * MarginBasisPoints + BasisPoints - 1) / BasisPoints);
    private static long Clamp(Int128 value) => value > long.MaxValue ? long.MaxValue : (long)value;
}
