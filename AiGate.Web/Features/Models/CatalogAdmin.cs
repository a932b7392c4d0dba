using System.Globalization;
using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Providers;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace AiGate.Web.Features.Models;

/// <summary>A model as an admin writes it: prices in integer micro-USD per million tokens, margin in basis points (null = the default).</summary>
public sealed record ModelSpec(
    string Id, string Name, string Kind, string OwnedBy, int ContextLength, int MaxOutputTokens,
    long? InputMicrosPerMTok, long? OutputMicrosPerMTok, long? CachedInputMicrosPerMTok, int? MarginBasisPoints,
    IReadOnlyList<string> Aliases, bool Enabled, MediaPriceSpec? Media = null)
{
    public static ModelSpec Of(CatalogModel m) => new(m.Id, m.Name, m.Kind, m.OwnedBy, m.ContextLength, m.MaxOutputTokens,
        m.InputMicrosPerMTok, m.OutputMicrosPerMTok, m.CachedInputMicrosPerMTok, m.MarginBasisPoints, [.. m.Aliases], m.Enabled,
        new MediaPriceSpec(ImagePriceTable.Canonical(m.ImagePrices), m.MicrosPerMChar, m.MicrosPerMinute, m.MicrosPerRequest,
            m.AudioInputMicrosPerMTok, m.AudioOutputMicrosPerMTok));

    /// <summary>The non-token prices, none when unset.</summary>
    public MediaPriceSpec Prices => Media ?? MediaPriceSpec.None;

    /// <summary>Equal field by field (the aliases as a list, in order).</summary>
    public bool SameAs(ModelSpec other) => this with { Aliases = [], Media = null } == other with { Aliases = [], Media = null }
        && Prices == other.Prices && Aliases.SequenceEqual(other.Aliases, StringComparer.Ordinal);
}

/// <summary>
/// A model's prices in units other than tokens, integer micro-USD: the image table (canonical JSON, <see cref="ImagePriceTable"/>),
/// speech per million characters, transcription per minute, moderation per request (null = free), realtime audio tokens per million.
/// </summary>
public sealed record MediaPriceSpec(string? ImagePrices, long? MicrosPerMChar, long? MicrosPerMinute, long? MicrosPerRequest,
    long? AudioInputMicrosPerMTok, long? AudioOutputMicrosPerMTok)
{
    public static readonly MediaPriceSpec None = new(null, null, null, null, null, null);
}

/// <summary>One route as an admin writes it; (model, provider, upstream model) names it.</summary>
public sealed record RouteSpec(string Provider, string UpstreamModel, int Priority, int Weight, bool Enabled)
{
    public static RouteSpec Of(ModelRoute r) => new(r.Provider, r.UpstreamModel, r.Priority, r.Weight, r.Enabled);
}

/// <summary>A field and what is wrong with it, in words an admin can act on.</summary>
public sealed record FieldError(string Field, string Message);

/// <summary>Input an admin must correct; nothing was changed.</summary>
public sealed class CatalogValidationException(IReadOnlyList<FieldError> errors)
    : Exception(string.Join(" ", errors.Select(e => e.Message)))
{
    public IReadOnlyList<FieldError> Errors { get; } = errors;
}

/// <summary>
/// Every change an admin makes to the catalogue (models, prices, routes) and to providers' runtime switches:
/// validated, written with its audit row in one transaction, and announced with the <c>catalog</c> notice in
/// that same transaction, so every instance's <see cref="ModelCatalog"/> reloads as soon as it commits.
/// </summary>
public sealed partial class CatalogAdmin(AppDbContext db, AuditLog audit, TimeProvider clock)
{
    public const string Notice = "catalog";

    public static IReadOnlyList<FieldError> Validate(ModelSpec m)
    {
        var errors = new List<FieldError>();
        if (!ModelId().IsMatch(m.Id))
            errors.Add(new("Id", $"Model id '{m.Id}' must look like provider/model (letters, digits and . _ - : /), at most 128 characters."));
        if (string.IsNullOrWhiteSpace(m.Name) || m.Name.Length > 128) errors.Add(new("Name", "Display name is required (at most 128 characters)."));
        if (!ModelKinds.All.Contains(m.Kind)) errors.Add(new("Kind", $"Kind must be one of {string.Join(", ", ModelKinds.All)}."));
        if (string.IsNullOrWhiteSpace(m.OwnedBy) || m.OwnedBy.Length > 64) errors.Add(new("OwnedBy", "Owned by is required (at most 64 characters)."));
        if (m.ContextLength is < 1 or > 100_000_000) errors.Add(new("ContextLength", "Context length must be between 1 and 100,000,000 tokens."));
        if (m.MaxOutputTokens is < 1 or > 100_000_000) errors.Add(new("MaxOutputTokens", "Max output must be between 1 and 100,000,000 tokens."));
        else if (m.MaxOutputTokens > m.ContextLength) errors.Add(new("MaxOutputTokens", "Max output cannot exceed the context length."));
        foreach (var (field, price) in new[] { ("InputPrice", m.InputMicrosPerMTok), ("OutputPrice", m.OutputMicrosPerMTok), ("CachedPrice", m.CachedInputMicrosPerMTok) })
            if (price is < 0 or > MaxPriceMicros) errors.Add(new(field, "Prices must be between $0 and $100,000 per million tokens."));
        if (m.InputMicrosPerMTok is null != m.OutputMicrosPerMTok is null)
            errors.Add(new("OutputPrice", "Set both the input and the output price, or neither (an unpriced model is not served)."));
        ValidatePrices(m, errors);
        if (m.MarginBasisPoints is < 10_000 or > 1_000_000) errors.Add(new("Margin", "Margin must be between 1.0 (sell at cost) and 100."));
        foreach (var alias in m.Aliases)
            if (!ModelId().IsMatch(alias) || alias == m.Id) errors.Add(new("Aliases", $"Alias '{alias}' is not a valid model name, or repeats the id."));
        if (m.Aliases.Distinct(StringComparer.Ordinal).Count() != m.Aliases.Count) errors.Add(new("Aliases", "An alias is listed twice."));
        return errors;
    }

    /// <summary>Each kind is billed in its own unit; a price in another kind's unit would never be charged, so it is refused.</summary>
    private static void ValidatePrices(ModelSpec m, List<FieldError> errors)
    {
        var p = m.Prices;
        var tokenPriced = ModelKinds.IsTokenPriced(m.Kind);
        if (!tokenPriced && (m.InputMicrosPerMTok ?? m.OutputMicrosPerMTok ?? m.CachedInputMicrosPerMTok) is not null)
            errors.Add(new("InputPrice", $"A {m.Kind} model is not priced per token: leave the token prices empty."));
        if (p.ImagePrices is not null && m.Kind != ModelKinds.Image) errors.Add(new("ImagePrices", "Image prices apply to image models only."));
        else if (m.Kind == ModelKinds.Image && ImagePriceTable.Parse(p.ImagePrices, out var imageError) is null) errors.Add(new("ImagePrices", imageError!));
        Unit("SpeechPrice", p.MicrosPerMChar, ModelKinds.Speech, "per million characters");
        Unit("MinutePrice", p.MicrosPerMinute, ModelKinds.Transcription, "per minute");
        Unit("RequestPrice", p.MicrosPerRequest, ModelKinds.Moderation, "per request");
        Unit("AudioInputPrice", p.AudioInputMicrosPerMTok, ModelKinds.Realtime, "per million audio tokens");
        Unit("AudioOutputPrice", p.AudioOutputMicrosPerMTok, ModelKinds.Realtime, "per million audio tokens");
        if (p.AudioInputMicrosPerMTok is null != p.AudioOutputMicrosPerMTok is null)
            errors.Add(new("AudioOutputPrice", "Set both audio prices, or neither (a realtime model without them is not served)."));

        void Unit(string field, long? price, string kind, string unit)
        {
            if (price is null) return;
            if (m.Kind != kind) errors.Add(new(field, $"A price {unit} applies to {kind} models only."));
            else if (price is < 0 or > MaxPriceMicros) errors.Add(new(field, $"The price {unit} must be between $0 and $100,000."));
        }
    }

    public static IReadOnlyList<FieldError> Validate(RouteSpec r)
    {
        var errors = new List<FieldError>();
        if (string.IsNullOrWhiteSpace(r.Provider) || r.Provider.Length > 64) errors.Add(new("Provider", "Provider is required."));
        if (string.IsNullOrWhiteSpace(r.UpstreamModel) || r.UpstreamModel.Length > 128) errors.Add(new("UpstreamModel", "Upstream model name is required (at most 128 characters)."));
        if (r.Priority is < 0 or > 1000) errors.Add(new("Priority", "Priority must be between 0 and 1000 (lower is tried first)."));
        if (r.Weight is < 1 or > 1000) errors.Add(new("Weight", "Weight must be between 1 and 1000."));
        return errors;
    }

    private const long MaxPriceMicros = 100_000L * 1_000_000;

    /// <summary>Creates a model (<c>model.create</c>). Throws <see cref="CatalogValidationException"/> on bad input or a taken id/alias.</summary>
    public async Task CreateModelAsync(ModelSpec spec, CancellationToken ct)
    {
        await using var tx = await BeginAsync(ct);
        await CreateInTransactionAsync(Normalize(spec), ct);
        await CommitAsync(tx, ct);
    }

    /// <summary>Updates a model (<c>model.update</c>, before → after). Returns false when there is no such model.</summary>
    public async Task<bool> UpdateModelAsync(string id, ModelSpec spec, string? detail, CancellationToken ct)
    {
        await using var tx = await BeginAsync(ct);
        var model = await db.Set<CatalogModel>().SingleOrDefaultAsync(m => m.Id == id, ct);
        if (model is null) return false;
        await UpdateInTransactionAsync(model, Normalize(spec with { Id = id }), detail, ct);
        await CommitAsync(tx, ct);
        return true;
    }

    /// <summary>Adds a route to a model (<c>route.create</c>).</summary>
    public async Task AddRouteAsync(string modelId, RouteSpec spec, CancellationToken ct)
    {
        await using var tx = await BeginAsync(ct);
        if (!await db.Set<CatalogModel>().AnyAsync(m => m.Id == modelId, ct))
            throw new CatalogValidationException([new("Model", $"There is no model '{modelId}'.")]);
        await AddRouteInTransactionAsync(modelId, Trim(spec), ct);
        await CommitAsync(tx, ct);
    }

    /// <summary>Edits or disables a route (<c>route.update</c>, before → after). Returns false when there is no such route.</summary>
    public async Task<bool> UpdateRouteAsync(long routeId, RouteSpec spec, CancellationToken ct)
    {
        await using var tx = await BeginAsync(ct);
        var route = await db.Set<ModelRoute>().SingleOrDefaultAsync(r => r.Id == routeId, ct);
        if (route is null) return false;
        await UpdateRouteInTransactionAsync(route, Trim(spec), null, ct);
        await CommitAsync(tx, ct);
        return true;
    }

    /// <summary>Switches a configured provider on or off on every instance (<c>provider.enable</c> / <c>provider.disable</c>). False when it is already so.</summary>
    public async Task<bool> SetProviderEnabledAsync(string provider, bool enabled, string? reason, CancellationToken ct)
    {
        await using var tx = await BeginAsync(ct);
        var setting = await db.Set<ProviderSetting>().SingleOrDefaultAsync(p => p.Provider == provider, ct);
        var was = setting?.Enabled ?? true;
        if (was == enabled) return false;
        if (setting is null) db.Set<ProviderSetting>().Add(setting = new ProviderSetting { Provider = provider });
        setting.Enabled = enabled;
        setting.ChangedAt = clock.GetUtcNow();
        audit.Add(new AuditChange(enabled ? "provider.enable" : "provider.disable", $"provider:{provider}",
            Before: new { enabled = was }, After: new { enabled }, Reason: string.IsNullOrWhiteSpace(reason) ? null : reason));
        await SaveAsync(ct);
        await CommitAsync(tx, ct);
        return true;
    }

    /// <summary>The whole catalogue, models with their routes, ordered by id.</summary>
    public async Task<CatalogFile> ExportAsync(CancellationToken ct)
    {
        var models = await db.Set<CatalogModel>().AsNoTracking().Include(m => m.Routes).OrderBy(m => m.Id).ToListAsync(ct);
        return new CatalogFile([.. models.Select(m => CatalogFileModel.Of(ModelSpec.Of(m), m.Routes.OrderBy(r => r.Priority).ThenBy(r => r.Id).Select(RouteSpec.Of)))]);
    }

    /// <summary>
    /// What importing <paramref name="file"/> would change, without changing anything. Throws
    /// <see cref="CatalogValidationException"/> listing every bad row when any row is bad.
    /// </summary>
    public async Task<IReadOnlyList<CatalogDiffLine>> DiffAsync(CatalogFile file, CancellationToken ct)
    {
        var (specs, errors) = Parse(file);
        if (errors.Count > 0) throw new CatalogValidationException(errors);
        var existing = await db.Set<CatalogModel>().AsNoTracking().Include(m => m.Routes).ToDictionaryAsync(m => m.Id, StringComparer.Ordinal, ct);
        var lines = new List<CatalogDiffLine>();
        foreach (var (model, routes) in specs)
        {
            if (!existing.TryGetValue(model.Id, out var current))
            {
                lines.Add(new("create", $"model:{model.Id}", Describe(model)));
                lines.AddRange(routes.Select(r => new CatalogDiffLine("create", RouteTarget(model.Id, r), Describe(r))));
                continue;
            }
            var before = ModelSpec.Of(current);
            lines.Add(before.SameAs(model) ? new("unchanged", $"model:{model.Id}", "") : new("update", $"model:{model.Id}", Changes(before, model)));
            foreach (var route in routes)
            {
                var row = current.Routes.FirstOrDefault(r => r.Provider == route.Provider && r.UpstreamModel == route.UpstreamModel);
                lines.Add(row is null ? new("create", RouteTarget(model.Id, route), Describe(route))
                    : RouteSpec.Of(row) == route ? new("unchanged", RouteTarget(model.Id, route), "")
                    : new("update", RouteTarget(model.Id, route), Changes(RouteSpec.Of(row), route)));
            }
        }
        return lines;
    }

    /// <summary>
    /// Applies <paramref name="file"/> in one transaction: models and routes in the file are created or updated
    /// (each audited, <paramref name="detail"/> saying where from); nothing is deleted. Any bad row, and any
    /// database refusal, changes nothing. Returns the diff applied.
    /// </summary>
    public async Task<IReadOnlyList<CatalogDiffLine>> ImportAsync(CatalogFile file, CancellationToken ct)
    {
        var diff = await DiffAsync(file, ct);
        var (specs, _) = Parse(file);
        await using var tx = await BeginAsync(ct);
        foreach (var (model, routes) in specs)
        {
            var current = await db.Set<CatalogModel>().Include(m => m.Routes).SingleOrDefaultAsync(m => m.Id == model.Id, ct);
            if (current is null) await CreateInTransactionAsync(model, ct, "import");
            else if (!ModelSpec.Of(current).SameAs(model)) await UpdateInTransactionAsync(current, model, "import", ct);
            foreach (var route in routes)
            {
                var row = await db.Set<ModelRoute>().SingleOrDefaultAsync(r => r.ModelId == model.Id && r.Provider == route.Provider && r.UpstreamModel == route.UpstreamModel, ct);
                if (row is null) await AddRouteInTransactionAsync(model.Id, route, ct, "import");
                else if (RouteSpec.Of(row) != route) await UpdateRouteInTransactionAsync(row, route, "import", ct);
            }
        }
        await CommitAsync(tx, ct);
        return diff;
    }

    private async Task CreateInTransactionAsync(ModelSpec spec, CancellationToken ct, string? detail = null)
    {
        var errors = Validate(spec).ToList();
        if (await db.Set<CatalogModel>().AnyAsync(m => m.Id == spec.Id, ct)) errors.Add(new("Id", $"A model with id '{spec.Id}' already exists."));
        errors.AddRange(await AliasClashesAsync(spec, ct));
        if (errors.Count > 0) throw new CatalogValidationException(errors);
        var model = new CatalogModel
        {
            Id = spec.Id, Name = spec.Name, Kind = spec.Kind, OwnedBy = spec.OwnedBy, Modalities = ["text"], CreatedAt = clock.GetUtcNow(),
        };
        Apply(model, spec);
        db.Set<CatalogModel>().Add(model);
        audit.Add(new AuditChange("model.create", $"model:{spec.Id}", After: spec, Detail: detail));
        await SaveAsync(ct);
    }

    private async Task UpdateInTransactionAsync(CatalogModel model, ModelSpec spec, string? detail, CancellationToken ct)
    {
        var errors = Validate(spec).ToList();
        errors.AddRange(await AliasClashesAsync(spec, ct));
        if (errors.Count > 0) throw new CatalogValidationException(errors);
        var before = ModelSpec.Of(model);
        if (before.SameAs(spec)) return;
        Apply(model, spec);
        audit.Add(new AuditChange("model.update", $"model:{spec.Id}", Before: before, After: spec, Detail: detail));
        await SaveAsync(ct);
    }

    private async Task AddRouteInTransactionAsync(string modelId, RouteSpec spec, CancellationToken ct, string? detail = null)
    {
        var errors = Validate(spec).ToList();
        if (await db.Set<ModelRoute>().AnyAsync(r => r.ModelId == modelId && r.Provider == spec.Provider && r.UpstreamModel == spec.UpstreamModel, ct))
            errors.Add(new("UpstreamModel", $"{modelId} already has a route to {spec.UpstreamModel} on {spec.Provider}."));
        if (errors.Count > 0) throw new CatalogValidationException(errors);
        db.Set<ModelRoute>().Add(new ModelRoute
        {
            ModelId = modelId, Provider = spec.Provider, UpstreamModel = spec.UpstreamModel, Priority = spec.Priority, Weight = spec.Weight, Enabled = spec.Enabled,
        });
        audit.Add(new AuditChange("route.create", RouteTarget(modelId, spec), After: spec, Detail: detail));
        await SaveAsync(ct);
    }

    private async Task UpdateRouteInTransactionAsync(ModelRoute route, RouteSpec spec, string? detail, CancellationToken ct)
    {
        var errors = Validate(spec).ToList();
        if ((spec.Provider != route.Provider || spec.UpstreamModel != route.UpstreamModel)
            && await db.Set<ModelRoute>().AnyAsync(r => r.Id != route.Id && r.ModelId == route.ModelId && r.Provider == spec.Provider && r.UpstreamModel == spec.UpstreamModel, ct))
            errors.Add(new("UpstreamModel", $"{route.ModelId} already has a route to {spec.UpstreamModel} on {spec.Provider}."));
        if (errors.Count > 0) throw new CatalogValidationException(errors);
        var before = RouteSpec.Of(route);
        if (before == spec) return;
        (route.Provider, route.UpstreamModel, route.Priority, route.Weight, route.Enabled) = (spec.Provider, spec.UpstreamModel, spec.Priority, spec.Weight, spec.Enabled);
        audit.Add(new AuditChange("route.update", RouteTarget(route.ModelId, before), Before: before, After: spec, Detail: detail));
        await SaveAsync(ct);
    }

    /// <summary>An alias must not name another model, nor be another model's alias: the catalogue would resolve it arbitrarily.</summary>
    private async Task<IEnumerable<FieldError>> AliasClashesAsync(ModelSpec spec, CancellationToken ct)
    {
        var others = await db.Set<CatalogModel>().AsNoTracking().Where(m => m.Id != spec.Id).Select(m => new { m.Id, m.Aliases }).ToListAsync(ct);
        var errors = new List<FieldError>();
        foreach (var other in others)
        {
            if (spec.Aliases.Contains(other.Id, StringComparer.Ordinal) || other.Aliases.Contains(spec.Id, StringComparer.Ordinal))
                errors.Add(new("Aliases", $"'{(spec.Aliases.Contains(other.Id) ? other.Id : spec.Id)}' already names model {other.Id}."));
            foreach (var alias in spec.Aliases.Intersect(other.Aliases, StringComparer.Ordinal))
                errors.Add(new("Aliases", $"Alias '{alias}' is already an alias of {other.Id}."));
        }
        return errors;
    }

    private static void Apply(CatalogModel model, ModelSpec spec)
    {
        model.Name = spec.Name;
        model.Kind = spec.Kind;
        model.OwnedBy = spec.OwnedBy;
        model.ContextLength = spec.ContextLength;
        model.MaxOutputTokens = spec.MaxOutputTokens;
        model.InputMicrosPerMTok = spec.InputMicrosPerMTok;
        model.OutputMicrosPerMTok = spec.OutputMicrosPerMTok;
        model.CachedInputMicrosPerMTok = spec.CachedInputMicrosPerMTok;
        model.MarginBasisPoints = spec.MarginBasisPoints;
        var prices = spec.Prices;
        model.ImagePrices = ImagePriceTable.Canonical(prices.ImagePrices);
        model.MicrosPerMChar = prices.MicrosPerMChar;
        model.MicrosPerMinute = prices.MicrosPerMinute;
        model.MicrosPerRequest = prices.MicrosPerRequest;
        model.AudioInputMicrosPerMTok = prices.AudioInputMicrosPerMTok;
        model.AudioOutputMicrosPerMTok = prices.AudioOutputMicrosPerMTok;
        model.Aliases = [.. spec.Aliases];
        model.Enabled = spec.Enabled;
    }

    /// <summary>
    /// Saves; a unique key the checks above could not see yet (another admin created the same id or route a moment
    /// ago) becomes a message, not a 500.
    /// </summary>
    private async Task SaveAsync(CancellationToken ct)
    {
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
        {
            throw new CatalogValidationException([new("Id", "Someone else just created the same model or route; reload the page and try again.")]);
        }
    }

    private async Task<IDbContextTransaction> BeginAsync(CancellationToken ct) => await db.Database.BeginTransactionAsync(ct);

    /// <summary>The notice goes out in the transaction, so PostgreSQL delivers it exactly when the change is visible.</summary>
    private async Task CommitAsync(IDbContextTransaction tx, CancellationToken ct)
    {
        await CacheNotifications.PublishAsync((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)tx.GetDbTransaction(), Notice, ct);
        await tx.CommitAsync(ct);
    }

    private static ModelSpec Normalize(ModelSpec s) => s with
    {
        Id = s.Id.Trim(), Name = s.Name.Trim(), Kind = s.Kind.Trim().ToLowerInvariant(), OwnedBy = s.OwnedBy.Trim(),
        Aliases = [.. s.Aliases.Select(a => a.Trim()).Where(a => a.Length > 0)],
        Media = s.Prices with { ImagePrices = ImagePriceTable.Canonical(s.Prices.ImagePrices) },
    };

    private static RouteSpec Trim(RouteSpec r) => r with { Provider = r.Provider.Trim(), UpstreamModel = r.UpstreamModel.Trim() };

    /// <summary>Every row of the file turned into specs, and every problem with them (row numbers count from 1).</summary>
    private static (List<(ModelSpec Model, List<RouteSpec> Routes)> Specs, List<FieldError> Errors) Parse(CatalogFile file)
    {
        var specs = new List<(ModelSpec, List<RouteSpec>)>();
        var errors = new List<FieldError>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (file.Models is null or { Count: 0 }) errors.Add(new("models", "The file has no models."));
        for (var i = 0; i < (file.Models?.Count ?? 0); i++)
        {
            var row = file.Models![i];
            var where = $"models[{i + 1}] ({row?.Id ?? "no id"})";
            if (row is null)
            {
                errors.Add(new(where, $"{where}: empty row."));
                continue;
            }
            var (spec, rowErrors) = row.ToSpec();
            foreach (var e in rowErrors) errors.Add(new(where, $"{where}: {e}"));
            if (spec is null) continue;
            spec = Normalize(spec);
            foreach (var e in Validate(spec)) errors.Add(new(where, $"{where}: {e.Message}"));
            if (!seen.Add(spec.Id)) errors.Add(new(where, $"{where}: '{spec.Id}' appears twice in the file."));
            var routes = new List<RouteSpec>();
            var routeKeys = new HashSet<(string, string)>();
            for (var j = 0; j < (row.Routes?.Count ?? 0); j++)
            {
                var r = row.Routes![j];
                var route = Trim(new RouteSpec(r.Provider ?? "", r.UpstreamModel ?? "", r.Priority, r.Weight ?? 1, r.Enabled ?? true));
                foreach (var e in Validate(route)) errors.Add(new(where, $"{where} routes[{j + 1}]: {e.Message}"));
                if (!routeKeys.Add((route.Provider, route.UpstreamModel))) errors.Add(new(where, $"{where} routes[{j + 1}]: the route appears twice."));
                routes.Add(route);
            }
            specs.Add((spec, routes));
        }
        return (specs, errors);
    }

    public static string RouteTarget(string modelId, RouteSpec r) => $"route:{modelId}/{r.Provider}/{r.UpstreamModel}";

    private static string Describe(ModelSpec m) => string.Create(CultureInfo.InvariantCulture,
        $"{m.Kind}, {(ModelKinds.IsTokenPriced(m.Kind) ? $"input {Price(m.InputMicrosPerMTok)}, output {Price(m.OutputMicrosPerMTok)}, cached {Price(m.CachedInputMicrosPerMTok)}, " : "")}{DescribeUnits(m.Prices)}margin {Margin(m.MarginBasisPoints)}, {(m.Enabled ? "enabled" : "disabled")}");

    private static string DescribeUnits(MediaPriceSpec p) =>
        (p.ImagePrices is { } images ? $"images {images}, " : "") +
        (p.MicrosPerMChar is { } chars ? $"{Price(chars)} per 1M characters, " : "") +
        (p.MicrosPerMinute is { } minute ? $"{Price(minute)} per minute, " : "") +
        (p.MicrosPerRequest is { } request ? $"{Price(request)} per request, " : "") +
        (p.AudioInputMicrosPerMTok is { } audioIn ? $"audio input {Price(audioIn)}, " : "") +
        (p.AudioOutputMicrosPerMTok is { } audioOut ? $"audio output {Price(audioOut)}, " : "");

    private static string Describe(RouteSpec r) => $"{r.Provider} → {r.UpstreamModel}, priority {r.Priority}, weight {r.Weight}, {(r.Enabled ? "enabled" : "disabled")}";

    private static string Changes(ModelSpec a, ModelSpec b)
    {
        var changes = new List<string>();
        void Field<T>(string name, T before, T after, Func<T, string> show)
        {
            if (!EqualityComparer<T>.Default.Equals(before, after)) changes.Add($"{name} {show(before)} → {show(after)}");
        }
        Field("name", a.Name, b.Name, s => s);
        Field("kind", a.Kind, b.Kind, s => s);
        Field("owned by", a.OwnedBy, b.OwnedBy, s => s);
        Field("context", a.ContextLength, b.ContextLength, n => n.ToString(CultureInfo.InvariantCulture));
        Field("max output", a.MaxOutputTokens, b.MaxOutputTokens, n => n.ToString(CultureInfo.InvariantCulture));
        Field("input", a.InputMicrosPerMTok, b.InputMicrosPerMTok, Price);
        Field("output", a.OutputMicrosPerMTok, b.OutputMicrosPerMTok, Price);
        Field("cached", a.CachedInputMicrosPerMTok, b.CachedInputMicrosPerMTok, Price);
        Field("image prices", a.Prices.ImagePrices, b.Prices.ImagePrices, s => s ?? "none");
        Field("per 1M characters", a.Prices.MicrosPerMChar, b.Prices.MicrosPerMChar, Price);
        Field("per minute", a.Prices.MicrosPerMinute, b.Prices.MicrosPerMinute, Price);
        Field("per request", a.Prices.MicrosPerRequest, b.Prices.MicrosPerRequest, Price);
        Field("audio input", a.Prices.AudioInputMicrosPerMTok, b.Prices.AudioInputMicrosPerMTok, Price);
        Field("audio output", a.Prices.AudioOutputMicrosPerMTok, b.Prices.AudioOutputMicrosPerMTok, Price);
        Field("margin", a.MarginBasisPoints, b.MarginBasisPoints, Margin);
        Field("aliases", string.Join(", ", a.Aliases), string.Join(", ", b.Aliases), s => $"[{s}]");
        Field("enabled", a.Enabled, b.Enabled, e => e ? "yes" : "no");
        return string.Join("; ", changes);
    }

    private static string Changes(RouteSpec a, RouteSpec b)
    {
        var changes = new List<string>();
        if (a.Priority != b.Priority) changes.Add($"priority {a.Priority} → {b.Priority}");
        if (a.Weight != b.Weight) changes.Add($"weight {a.Weight} → {b.Weight}");
        if (a.Enabled != b.Enabled) changes.Add($"enabled {(a.Enabled ? "yes" : "no")} → {(b.Enabled ? "yes" : "no")}");
        return string.Join("; ", changes);
    }

    /// <summary>USD per million tokens, exactly (micro-USD has six decimals).</summary>
    public static string Price(long? micros) => micros is { } m ? "$" + (m / 1_000_000m).ToString("0.00####", CultureInfo.InvariantCulture) : "none";

    public static string Margin(int? basisPoints) => basisPoints is { } bp ? "×" + (bp / 10_000m).ToString("0.####", CultureInfo.InvariantCulture) : "default";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._:\-/]{0,127}$")]
    private static partial Regex ModelId();
}

/// <summary>One line of an import's diff: create, update or unchanged, the target, and what changes.</summary>
public sealed record CatalogDiffLine(string Action, string Target, string Detail);
