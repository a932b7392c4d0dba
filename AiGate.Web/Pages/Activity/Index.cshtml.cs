using System.Globalization;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages.Activity;

/// <summary>
/// The Activity page: the signed-in account's spend, requests, tokens, errors and latency (p50/p95) over a period
/// (today, 7 or 30 days, this month, or custom whole UTC days), grouped by model, key, provider, day or (for those who see
/// everyone's usage) member; a plain member sees only the usage of the keys they created. Every number
/// comes from <see cref="UsageQueries.SummarizeDaysAsync"/>, the rollup read behind <c>GET /api/v1/usage</c>, so the
/// page and the API agree for the same period and grouping. Charts are server-rendered SVG (the CSP allows no inline
/// script or style), each with a table under it as its text alternative. <c>?handler=csv</c> streams the period's
/// daily totals.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.UseOwnKeys)]
public sealed class IndexModel(UsageQueries usage, TimeProvider clock, OrgContext orgs) : PageModel
{
    public static readonly (string Value, string Label)[] Periods = [("today", "Today"), ("7d", "7 days"), ("30d", "30 days"), ("month", "This month"), ("custom", "Custom")];
    public static readonly (string Value, string Label, UsageGrouping Grouping)[] Groupings =
        [("model", "Model", UsageGrouping.Model), ("key", "Key", UsageGrouping.Key), ("provider", "Provider", UsageGrouping.Provider), ("day", "Day", UsageGrouping.Day),
         ("member", "Member", UsageGrouping.Member)];

    /// <summary>The groupings this user may choose: by member only for those who see everyone's usage.</summary>
    public IEnumerable<(string Value, string Label, UsageGrouping Grouping)> Choices =>
        orgs.Current.UsageMember is null ? Groupings : Groupings.Where(g => g.Grouping != UsageGrouping.Member);

    [BindProperty(SupportsGet = true)] public string Period { get; set; } = "30d";
    [BindProperty(SupportsGet = true)] public string Group { get; set; } = "model";
    [BindProperty(SupportsGet = true)] public DateOnly? From { get; set; }
    [BindProperty(SupportsGet = true)] public DateOnly? To { get; set; }

    public DateOnly First { get; private set; }
    public DateOnly Last { get; private set; }
    public UsageGrouping Grouping { get; private set; } = UsageGrouping.Model;
    public IReadOnlyList<Row> Rows { get; private set; } = [];
    public UsageTotals Total { get; private set; }
    public LatencyPercentile? TotalP50 { get; private set; }
    public LatencyPercentile? TotalP95 { get; private set; }
    /// <summary>Calls whose latency is known (all but those rolled up and pruned before latency histograms existed).</summary>
    public long LatencyCalls { get; private set; }
    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (!Resolve()) return Page();
        var summary = await usage.SummarizeDaysAsync(orgs.Current.Id, First, Last, Grouping, ct, memberId: orgs.Current.UsageMember);
        var groups = Grouping == UsageGrouping.Day ? UsageQueries.FillDays(summary.Groups, First, Last) : summary.Groups;
        Rows = [.. groups.Select(g => new Row(Label(g), g.Totals, LatencyHistogram.Percentile(g.Latency, 0.5), LatencyHistogram.Percentile(g.Latency, 0.95)))];
        Total = summary.Total;
        TotalP50 = LatencyHistogram.Percentile(summary.Latency, 0.5);
        TotalP95 = LatencyHistogram.Percentile(summary.Latency, 0.95);
        LatencyCalls = LatencyHistogram.Count(summary.Latency);
        return Page();
    }

    /// <summary>The period's daily totals as CSV (the columns of the day table), streamed.</summary>
    public async Task<IActionResult> OnGetCsvAsync(CancellationToken ct)
    {
        if (!Resolve()) return BadRequest(Error!);
        var summary = await usage.SummarizeDaysAsync(orgs.Current.Id, First, Last, UsageGrouping.Day, ct, memberId: orgs.Current.UsageMember);
        await UsageCsv.WriteDaysAsync(Response, string.Create(CultureInfo.InvariantCulture, $"daily-totals-{First:yyyy-MM-dd}-{Last:yyyy-MM-dd}.csv"),
            UsageQueries.FillDays(summary.Groups, First, Last), ct);
        return new EmptyResult();
    }

    /// <summary>The period's days and the grouping from the query; false (with <see cref="Error"/>) for a bad custom range.</summary>
    private bool Resolve()
    {
        var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
        Grouping = Choices.FirstOrDefault(g => g.Value == Group, Groupings[0]).Grouping;
        Group = Groupings.First(g => g.Grouping == Grouping).Value;
        (First, Last) = Period switch
        {
            "today" => (today, today),
            "7d" => (today.AddDays(-6), today),
            "month" => (new DateOnly(today.Year, today.Month, 1), today),
            "custom" => (From ?? today.AddDays(-29), To ?? today),
            _ => (today.AddDays(-29), today),
        };
        if (Periods.All(p => p.Value != Period)) Period = "30d";
        if (Period != "custom")
        {
            (From, To) = (First, Last);
            return true;
        }
        if (First > Last) Error = "The start of the period must not be after its end.";
        else if (Last.DayNumber - First.DayNumber + 1 > UsageQueries.MaxDays) Error = $"A period may cover at most {UsageQueries.MaxDays} days.";
        else if (First.Year < 2000 || Last.Year > 9000) Error = "Choose dates between the years 2000 and 9000.";
        (From, To) = (First, Last);
        return Error is null;
    }

    private string Label(UsageGroup g) => Grouping switch
    {
        UsageGrouping.Day => g.Day!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        UsageGrouping.Key => g.KeyName is null ? $"deleted key {g.KeyId!.Value.ToString()[..8]}" : $"{g.KeyName} ({g.KeyPrefix}…)",
        UsageGrouping.Provider => string.IsNullOrEmpty(g.Provider) ? "(none)" : g.Provider,
        // No creator e-mail: the key's creator is no longer a user, or the key itself is gone.
        UsageGrouping.Member => g.MemberEmail ?? "former member",
        _ => g.Model ?? "",
    };

    public sealed record Row(string Label, UsageTotals Totals, LatencyPercentile? P50, LatencyPercentile? P95);

    /// <summary>The charts of the page, each a set of series over <see cref="Rows"/>.</summary>
    public IReadOnlyList<Chart> Charts() =>
    [
        new("spend", "Spend (USD)", [new("Spend", "chart-bar", [.. Rows.Select(r => (double)r.Totals.CostMicros)], [.. Rows.Select(r => "$" + Money.Usd(r.Totals.CostMicros))],
            [.. Rows.Select(r => r.Totals.CostMicros)])]),
        new("requests", "Requests", [new("Requests", "chart-bar", [.. Rows.Select(r => (double)r.Totals.Requests)], [.. Rows.Select(r => Count(r.Totals.Requests))],
            [.. Rows.Select(r => r.Totals.Requests)])]),
        new("tokens", "Tokens", [
            new("Input", "chart-bar", [.. Rows.Select(r => (double)r.Totals.PromptTokens)], [.. Rows.Select(r => Count(r.Totals.PromptTokens))], [.. Rows.Select(r => r.Totals.PromptTokens)]),
            new("Cached input", "chart-bar chart-bar-alt2", [.. Rows.Select(r => (double)r.Totals.CachedTokens)], [.. Rows.Select(r => Count(r.Totals.CachedTokens))], [.. Rows.Select(r => r.Totals.CachedTokens)]),
            new("Output", "chart-bar chart-bar-alt", [.. Rows.Select(r => (double)r.Totals.CompletionTokens)], [.. Rows.Select(r => Count(r.Totals.CompletionTokens))], [.. Rows.Select(r => r.Totals.CompletionTokens)])]),
        new("errors", "Errors (status 400 and over)", [new("Errors", "chart-bar chart-bar-error", [.. Rows.Select(r => (double)r.Totals.Errors)], [.. Rows.Select(r => Count(r.Totals.Errors))],
            [.. Rows.Select(r => r.Totals.Errors)])]),
        new("latency", "Latency (ms, p50 and p95)", [
            new("p50", "chart-bar", [.. Rows.Select(r => (double)(r.P50?.Ms ?? 0))], [.. Rows.Select(r => r.P50?.ToString() ?? "—")], [.. Rows.Select(r => (long)(r.P50?.Ms ?? 0))]),
            new("p95", "chart-bar chart-bar-alt", [.. Rows.Select(r => (double)(r.P95?.Ms ?? 0))], [.. Rows.Select(r => r.P95?.ToString() ?? "—")], [.. Rows.Select(r => (long)(r.P95?.Ms ?? 0))])]),
    ];

    private static string Count(long value) => value.ToString("#,##0", CultureInfo.InvariantCulture);

    public const double ChartWidth = 600, ChartHeight = 140;

    /// <summary>One chart: a series per measure, a value (and its display text and raw number) per row.</summary>
    public sealed record Chart(string Id, string Title, IReadOnlyList<Series> Series)
    {
        /// <summary>The bars in the SVG's own units: per row a slot, split between the series.</summary>
        public IEnumerable<Bar> Bars(IReadOnlyList<Row> rows)
        {
            var max = 0.0;
            foreach (var s in Series) foreach (var v in s.Values) max = Math.Max(max, v);
            var slot = ChartWidth / Math.Max(1, rows.Count);
            var width = slot * 0.7 / Series.Count;
            for (var i = 0; i < rows.Count; i++)
                for (var j = 0; j < Series.Count; j++)
                {
                    var value = Series[j].Values[i];
                    // A row with a tiny value still shows a sliver; a zero shows nothing.
                    var height = max <= 0 || value <= 0 ? 0 : Math.Max(1.5, Math.Round(ChartHeight * value / max, 2));
                    yield return new Bar(Series[j].CssClass, $"{rows[i].Label}: {Series[j].Name} {Series[j].Display[i]}",
                        Math.Round(i * slot + slot * 0.15 + j * width, 2), ChartHeight - height, Math.Round(width, 2), height);
                }
        }
    }

    public sealed record Series(string Name, string CssClass, double[] Values, string[] Display, long[] Raw);

    public sealed record Bar(string CssClass, string Title, double X, double Y, double Width, double Height);
}
