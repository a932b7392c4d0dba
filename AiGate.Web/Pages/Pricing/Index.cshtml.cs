using System.Globalization;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Pages.Pricing;

/// <summary>
/// <c>/pricing</c>, public: plans and credit packs from <see cref="BillingOptions"/>, and every model the gateway
/// sells with our price per million tokens. Prices come from the catalogue's <see cref="ModelPricing"/>, the same
/// values the gateway charges with, so the page cannot disagree with a bill. <c>?q=</c> filters on the server
/// (rows that do not match are rendered <c>hidden</c>, so the filter-as-you-type script can show them again) and
/// <c>?sort=</c> / <c>?dir=</c> order the table; both work without JavaScript.
/// </summary>
[AllowAnonymous]
public sealed class IndexModel(ModelCatalog catalog, IOptions<BillingOptions> billing, IOptions<CreditsOptions> credits) : PageModel
{
    /// <summary>Longest search query we look at; the rest is ignored.</summary>
    public const int MaxQueryLength = 100;

    public BillingOptions Billing => billing.Value;
    public decimal UsdPerCredit => credits.Value.UsdPerCredit;

    public string Query { get; private set; } = "";
    public ModelSort Sort { get; private set; } = ModelSort.Model;
    public bool Descending { get; private set; }
    public IReadOnlyList<ModelRow> Models { get; private set; } = [];
    /// <summary>Models priced per image, character, minute or request (<see cref="ModelRow.Units"/>), by kind then id.</summary>
    public IReadOnlyList<ModelRow> MediaModels { get; private set; } = [];
    /// <summary>The per-token table's models (the count above it); the filter applies to the media table too.</summary>
    public int TotalCount => Models.Count;
    public int MatchCount => Models.Count(m => m.Matches);

    /// <summary>What the visitor typed as a custom amount, shown again with <see cref="CustomAmountError"/>.</summary>
    public string? CustomUsd { get; private set; }
    public string? CustomAmountError { get; private set; }

    public async Task OnGetAsync(string? q, string? sort, string? dir, CancellationToken ct) => await LoadAsync(q, sort, dir, ct);

    /// <summary>
    /// The custom-amount form (<c>?handler=custom&amp;usd=12.50</c>): people type dollars, <c>/billing</c> takes cents,
    /// so the amount is checked here and passed on as <c>/billing?amount=&lt;cents&gt;</c>; a bad one re-shows the page with why.
    /// </summary>
    public async Task<IActionResult> OnGetCustomAsync(string? usd, CancellationToken ct)
    {
        // The range is BillingCheckout.Parse's, as on /billing; the message stays this page's own, one for any bad amount.
        if (BillingCheckout.Parse(Billing, null, BillingCheckout.ParseUsdCents(usd), null).Purchase is Purchase.Custom custom)
            return Redirect($"/billing?amount={custom.AmountCents.ToString(CultureInfo.InvariantCulture)}");

        CustomUsd = usd?.Length > 20 ? usd[..20] : usd;
        CustomAmountError = $"Enter an amount from ${Dollars(Billing.CustomAmountMinCents)} to ${Dollars(Billing.CustomAmountMaxCents)}, in dollars and cents (for example 20 or 12.50).";
        await LoadAsync(null, null, null, ct);
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }

    private async Task LoadAsync(string? q, string? sort, string? dir, CancellationToken ct)
    {
        var all = await catalog.GetAllAsync(ct);
        Query = (q ?? "").Trim();
        if (Query.Length > MaxQueryLength) Query = Query[..MaxQueryLength];
        Sort = Enum.TryParse<ModelSort>(sort, ignoreCase: true, out var s) && Enum.IsDefined(s) ? s : ModelSort.Model;
        Descending = string.Equals(dir, "desc", StringComparison.OrdinalIgnoreCase);

        var terms = SearchTerms(Query);
        // What /api/v1/models lists: priced models with a route to a provider this deployment has. An unpriced
        // model is refused by the gateway (never billed at $0), so it is not for sale here either.
        var rows = all.Where(m => m.IsServable && ModelKinds.IsTokenPriced(m.Kind)).Select(m =>
        {
            var pricing = m.Pricing!.Value;
            var search = SearchText(m);
            return new ModelRow(m.Id, m.Name, m.OwnedBy, m.Kind, m.ContextLength, pricing.OurInputPerMTok,
                m.Kind == ModelKinds.Embedding ? null : pricing.OurOutputPerMTok, search, terms.All(search.Contains), m.Media?.Units(m.Kind) ?? []);
        });
        // Images, speech, transcription and moderation are sold in their own units, so they get their own table.
        MediaModels = [.. all.Where(m => m.IsServable && !ModelKinds.IsTokenPriced(m.Kind)).OrderBy(m => m.Kind, StringComparer.Ordinal).ThenBy(m => m.Id, StringComparer.Ordinal)
            .Select(m =>
            {
                var search = SearchText(m);
                return new ModelRow(m.Id, m.Name, m.OwnedBy, m.Kind, 0, 0, null, search, terms.All(search.Contains), m.Media!.Units(m.Kind));
            })];
        Models = Order(rows).ToList();
    }

    private IEnumerable<ModelRow> Order(IEnumerable<ModelRow> rows)
    {
        // Ties (and the default) fall back to the id, so the order is stable from request to request.
        var ordered = Sort switch
        {
            ModelSort.Input => Descending ? rows.OrderByDescending(r => r.InputPerMTok) : rows.OrderBy(r => r.InputPerMTok),
            ModelSort.Output => Descending ? rows.OrderByDescending(r => r.OutputPerMTok ?? -1) : rows.OrderBy(r => r.OutputPerMTok ?? -1),
            ModelSort.Context => Descending ? rows.OrderByDescending(r => r.ContextLength) : rows.OrderBy(r => r.ContextLength),
            _ => Descending ? rows.OrderByDescending(r => r.Id, StringComparer.Ordinal) : rows.OrderBy(r => r.Id, StringComparer.Ordinal),
        };
        return Sort == ModelSort.Model ? ordered : ordered.ThenBy(r => r.Id, StringComparer.Ordinal);
    }

    /// <summary>
    /// The text a query is matched against: id, name and provider, lower case. The page puts it on each row
    /// (<c>data-search</c>) and pricing.js matches the same way, so typing and <c>?q=</c> agree.
    /// </summary>
    private static string SearchText(ResolvedModel m) => $"{m.Id} {m.Name} {m.OwnedBy} {m.Kind}".ToLowerInvariant();

    /// <summary>Every word of the query must appear (in any order): "mini gpt" finds "GPT-4o mini".</summary>
    private static string[] SearchTerms(string query) =>
        query.ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    public static string Dollars(long cents) =>
        (cents / 100m).ToString(cents % 100 == 0 ? "#,##0" : "#,##0.00", CultureInfo.InvariantCulture);

    public static string Count(long value) => value.ToString("#,##0", CultureInfo.InvariantCulture);

    /// <summary>The sort links: the column's own link flips the direction when it is already the sort.</summary>
    public string SortUrl(ModelSort column)
    {
        var descending = column == Sort && !Descending;
        var query = new List<string>();
        if (Query.Length > 0) query.Add("q=" + Uri.EscapeDataString(Query));
        if (column != ModelSort.Model) query.Add("sort=" + column.ToString().ToLowerInvariant());
        if (descending) query.Add("dir=desc");
        return "/pricing" + (query.Count > 0 ? "?" + string.Join('&', query) : "") + "#models";
    }

    public string? AriaSort(ModelSort column) => column == Sort ? (Descending ? "descending" : "ascending") : null;

    public enum ModelSort { Model, Context, Input, Output }

    /// <param name="InputPerMTok">Our price (margin included) per million input tokens, micro-USD.</param>
    /// <param name="OutputPerMTok">Our price per million output tokens; null for embedding models, which produce none.</param>
    /// <param name="Matches">Whether it matches the query; rows that do not are rendered hidden.</param>
    /// <param name="Units">Our prices in the kind's own units ("$0.072 / image 1024x1024 standard"); realtime's audio tokens too.</param>
    public sealed record ModelRow(string Id, string Name, string Provider, string Kind, int ContextLength, long InputPerMTok,
        long? OutputPerMTok, string SearchText, bool Matches, IReadOnlyList<string> Units);
}
