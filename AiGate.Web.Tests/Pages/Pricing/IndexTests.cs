using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Tests.Pages.Pricing;

/// <summary>
/// The app for the pricing page: every seeded provider configured (never called), so the whole seeded catalogue
/// is on sale, and a Billing section that differs from appsettings.json, to prove the page shows configuration.
/// An <see cref="AccountsApp"/>, so a test can also look at the page signed in.
/// </summary>
public sealed class PricingApp : AccountsApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Providers:openai:Kind"] = "openai",
        ["Providers:openai:BaseUrl"] = "http://127.0.0.1:9/v1",
        ["Providers:openai:ApiKey"] = "sk-test-never-sent",
        ["Providers:anthropic:Kind"] = "anthropic",
        ["Providers:anthropic:BaseUrl"] = "http://127.0.0.1:9",
        ["Providers:anthropic:ApiKey"] = "sk-test-never-sent",
        ["Providers:gemini:Kind"] = "gemini",
        ["Providers:gemini:BaseUrl"] = "http://127.0.0.1:9",
        ["Providers:gemini:ApiKey"] = "sk-test-never-sent",
        ["Billing:Plans:1:Id"] = "builder",
        ["Billing:Plans:1:Name"] = "Builder",
        ["Billing:Plans:1:MonthlyPriceCents"] = "1234",
        ["Billing:Plans:1:MonthlyAllowanceMicros"] = "12340000",
        ["Billing:Plans:1:RequestsPerMinute"] = "321",
        ["Billing:Plans:1:TokensPerMinute"] = "654321",
        ["Billing:Plans:1:Seats"] = "7",
        ["Billing:CreditPacks:0:Id"] = "pack-15",
        ["Billing:CreditPacks:0:PriceCents"] = "1500",
        ["Billing:CreditPacks:2:BonusMicros"] = "7500000",
        ["Billing:CustomAmountMinCents"] = "700",
        ["Billing:CustomAmountMaxCents"] = "25000",
    };
}

/// <summary>
/// <c>/pricing</c> over HTTP: public, every model on sale with the price the gateway charges for a million tokens
/// (computed here from the database row with the gateway's <see cref="ModelPricing"/>), the server-side search and
/// sort, plans and packs from configuration, and the custom amount hand-over to <c>/billing</c>.
/// </summary>
public sealed partial class IndexTests(PricingApp app) : IClassFixture<PricingApp>
{
    private static readonly string[] ConfiguredProviders = ["echo", "openai", "anthropic", "gemini"];

    private sealed record Row(string Id, bool Hidden, string Html)
    {
        public string Cell(string testId) => WebUtility.HtmlDecode(Regex.Match(Html, $"data-testid=\"{testId}\">([^<]*)<").Groups[1].Value).Trim();
    }

    private sealed record DbModel(string Id, string Name, string OwnedBy, int ContextLength, string Kind, ModelPricing Pricing);

    private async Task<string> PageAsync(string url, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var response = await app.CreateBrowserlessClient().GetAsync(url);
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"GET {url} answered {(int)response.StatusCode} {response.Headers.Location}");
        return html;
    }

    private static List<Row> Rows(string html) =>
        [.. ModelRow().Matches(html).Select(m => new Row(WebUtility.HtmlDecode(m.Groups[1].Value), m.Groups[2].Value.Contains("hidden", StringComparison.Ordinal), m.Groups[3].Value))];

    private static List<string> Visible(string html) => [.. Rows(html).Where(r => !r.Hidden).Select(r => r.Id)];

    /// <summary>
    /// What the gateway sells, read from the tables rather than from the app: enabled, priced, with an enabled route
    /// to a configured provider; margin = the row's own or the configured default.
    /// </summary>
    private async Task<List<DbModel>> ModelsOnSaleAsync()
    {
        var margin = app.Services.GetRequiredService<IOptions<ModelsOptions>>().Value.DefaultMarginBasisPoints;
        await using var source = app.Database.CreateDataSource();
        await using var command = source.CreateCommand("""
            select id, name, owned_by, context_length, kind, input_micros_per_mtok, output_micros_per_mtok,
                   coalesce(cached_input_micros_per_mtok, input_micros_per_mtok), margin_basis_points
            from models m
            where enabled and input_micros_per_mtok is not null and output_micros_per_mtok is not null
              and exists (select 1 from model_routes r where r.model_id = m.id and r.enabled and r.provider = any($1))
            order by id
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = ConfiguredProviders });
        var models = new List<DbModel>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            models.Add(new DbModel(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.GetString(4),
                new ModelPricing(reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.IsDBNull(8) ? margin : reader.GetInt32(8))));
        return models;
    }

    private Task ReloadCatalogAsync() => app.Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);

    [Fact]
    public async Task Every_model_on_sale_is_listed_with_what_the_gateway_charges_for_a_million_tokens()
    {
        var expected = await ModelsOnSaleAsync();
        Assert.True(expected.Count >= 15, "the seeded catalogue is on sale with every provider configured");

        var rows = Rows(await PageAsync("/pricing"));

        Assert.Equal(expected.Select(m => m.Id), rows.Select(r => r.Id));   // all of them, by id, nothing else
        Assert.All(rows, r => Assert.False(r.Hidden));
        foreach (var model in expected)
        {
            var row = rows.Single(r => r.Id == model.Id);
            // The gateway's charge for exactly one million input (output) tokens, margin and rounding included.
            var input = model.Pricing.CostMicros(new TokenUsage(1_000_000, 0));
            var output = model.Pricing.CostMicros(new TokenUsage(0, 1_000_000));
            Assert.Equal("$" + Money.UsdDisplay(input), row.Cell("input-price"));
            Assert.Equal(model.Kind == "embedding" ? "—" : "$" + Money.UsdDisplay(output), row.Cell("output-price"));
            Assert.Contains(WebUtility.HtmlEncode(model.Name), row.Html, StringComparison.Ordinal);
            Assert.Contains($">{model.OwnedBy}<", row.Html, StringComparison.Ordinal);
            Assert.Contains($">{model.ContextLength.ToString("#,##0", CultureInfo.InvariantCulture)}<", row.Html, StringComparison.Ordinal);
        }
        // One hand-checked value, so a shared mistake in ModelPricing cannot pass unnoticed: $2.50 × 1.8 = $4.50.
        Assert.Equal("$4.50", rows.Single(r => r.Id == "openai/gpt-4o").Cell("input-price"));
    }

    [Fact]
    public async Task Disabled_unpriced_and_unroutable_models_are_not_for_sale()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string Insert(string id, string price, bool enabled, string provider) => $"""
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                                cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
            values ('{id}', 'Test {id}', 'chat', 'testco', 4096, 1024, {price}, {price}, null, 25000, array[]::text[], array['text'], {enabled}, now());
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values ('{id}', '{provider}', 'echo-1', 0, 1, true);
            """;
        await app.Database.ExecuteAsync(
            Insert($"test/on-sale-{suffix}", "1000000", true, "echo") + Insert($"test/disabled-{suffix}", "1000000", false, "echo") +
            Insert($"test/unpriced-{suffix}", "null", true, "echo") + Insert($"test/unroutable-{suffix}", "1000000", true, "nowhere"));
        await ReloadCatalogAsync();

        var html = await PageAsync("/pricing");

        var ids = Rows(html).Select(r => r.Id).ToList();
        Assert.Contains($"test/on-sale-{suffix}", ids);
        Assert.Equal("$2.50", Rows(html).Single(r => r.Id == $"test/on-sale-{suffix}").Cell("input-price"));   // its own ×2.5 margin
        Assert.DoesNotContain($"test/disabled-{suffix}", html, StringComparison.Ordinal);
        Assert.DoesNotContain($"test/unpriced-{suffix}", html, StringComparison.Ordinal);
        Assert.DoesNotContain($"test/unroutable-{suffix}", html, StringComparison.Ordinal);

        // Disabling a model that was on sale takes it off the page with the next catalogue load.
        await app.Database.ExecuteAsync($"update models set enabled = false where id = 'test/on-sale-{suffix}'");
        await ReloadCatalogAsync();
        Assert.DoesNotContain($"test/on-sale-{suffix}", await PageAsync("/pricing"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("anthropic")]          // provider
    [InlineData("GPT-4.1")]            // name, any case
    [InlineData("google/gemini-2.5")]  // id
    [InlineData("mini gpt")]           // every word, in any order
    [InlineData("  Echo  ")]
    public async Task Search_filters_on_the_server_by_id_name_and_provider(string query)
    {
        var onSale = await ModelsOnSaleAsync();
        var terms = query.Trim().ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var expected = onSale.Where(m => terms.All(t => $"{m.Id} {m.Name} {m.OwnedBy}".ToLowerInvariant().Contains(t, StringComparison.Ordinal)))
            .Select(m => m.Id).ToList();
        Assert.NotEmpty(expected);
        Assert.True(expected.Count < onSale.Count, "the query leaves something out");

        var html = await PageAsync("/pricing?q=" + Uri.EscapeDataString(query));

        Assert.Equal(expected, Visible(html));
        Assert.Equal(onSale.Count, Rows(html).Count);   // the rest is there, hidden, for the filter-as-you-type script
        Assert.Contains($"{expected.Count} of {onSale.Count} models match", html, StringComparison.Ordinal);
        Assert.Contains($"value=\"{WebUtility.HtmlEncode(query.Trim())}\"", html, StringComparison.Ordinal);
        Assert.DoesNotMatch("<p[^>]*data-model-empty(?![^>]*hidden)", html);
    }

    [Fact]
    public async Task A_search_that_matches_nothing_says_so_and_odd_queries_are_harmless()
    {
        var html = await PageAsync("/pricing?q=no-such-model-anywhere");
        Assert.Empty(Visible(html));
        Assert.Matches("<p[^>]*data-model-empty(?![^>]*hidden)[^>]*>No model matches", html);

        var huge = await PageAsync("/pricing?q=" + new string('x', 5000) + "&sort=" + Uri.EscapeDataString("'; drop table models;--") + "&dir=sideways");
        Assert.Empty(Visible(huge));
        var markup = await PageAsync("/pricing?q=" + Uri.EscapeDataString("<script>alert(1)</script>"));
        Assert.DoesNotContain("<script>alert(1)", markup, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", markup, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("input", false)]
    [InlineData("input", true)]
    [InlineData("output", false)]
    [InlineData("context", true)]
    public async Task The_table_sorts_by_price_and_context_without_javascript(string sort, bool descending)
    {
        var onSale = await ModelsOnSaleAsync();
        Func<DbModel, long> key = sort switch
        {
            "input" => m => m.Pricing.CostMicros(new TokenUsage(1_000_000, 0)),
            "output" => m => m.Kind == "embedding" ? -1 : m.Pricing.CostMicros(new TokenUsage(0, 1_000_000)),
            _ => m => m.ContextLength,
        };
        var ordered = descending ? onSale.OrderByDescending(key) : onSale.OrderBy(key);
        var expected = ordered.ThenBy(m => m.Id, StringComparer.Ordinal).Select(m => m.Id).ToList();

        var html = await PageAsync($"/pricing?sort={sort}{(descending ? "&dir=desc" : "")}");

        Assert.Equal(expected, Visible(html));
        Assert.Matches($"aria-sort=\"{(descending ? "descending" : "ascending")}\"><a href=\"[^\"]*sort={sort}", html);
    }

    [Fact]
    public async Task Plans_and_packs_come_from_configuration()
    {
        var billing = app.Services.GetRequiredService<IOptions<BillingOptions>>().Value;
        Assert.Equal(4, billing.Plans.Count);   // appsettings' four, overridden in place (a second binding would double them)

        var html = await PageAsync("/pricing");

        var plans = PlanCard().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(billing.Plans.Select(p => p.Id), plans);
        Assert.Equal(["free", "builder", "pro", "team"], plans);
        var builder = Card(html, "plan", "builder");
        Assert.Contains(">Builder<", builder, StringComparison.Ordinal);
        Assert.Contains(">$12.34</span>", builder, StringComparison.Ordinal);
        Assert.Contains("$12.34 of credit every month (1,234 credits)", builder, StringComparison.Ordinal);
        Assert.Contains("321 requests per minute", builder, StringComparison.Ordinal);
        Assert.Contains("654,321 tokens per minute", builder, StringComparison.Ordinal);
        Assert.Contains("href=\"/billing?plan=builder\"", builder, StringComparison.Ordinal);
        var free = Card(html, "plan", "free");
        Assert.Contains(">$0</span>", free, StringComparison.Ordinal);
        Assert.Contains("No monthly credit", free, StringComparison.Ordinal);
        Assert.Contains("href=\"/Account/Register\"", free, StringComparison.Ordinal);   // signed out: the free plan is a sign-up

        Assert.Equal(billing.CreditPacks.Select(p => p.Id), PackCard().Matches(html).Select(m => m.Groups[1].Value));
        var pack15 = Card(html, "pack", "pack-15");
        Assert.Contains(">$15</span>", pack15, StringComparison.Ordinal);
        Assert.Contains("$15.00 of credit (1,500 credits)", pack15, StringComparison.Ordinal);
        Assert.Contains("href=\"/billing?pack=pack-15\"", pack15, StringComparison.Ordinal);
        Assert.DoesNotContain("bonus", pack15, StringComparison.Ordinal);
        var pack100 = Card(html, "pack", "pack-100");
        Assert.Contains("$107.50 of credit (10,750 credits)", pack100, StringComparison.Ordinal);   // exactly what CreditMicros credits
        Assert.Equal(107_500_000, billing.FindPack("pack-100")!.CreditMicros);
        Assert.Contains("Includes a $7.50 bonus", pack100, StringComparison.Ordinal);
        Assert.Contains("From $7 to $250, credited in full", html, StringComparison.Ordinal);
        Assert.Contains("1 credit = $0.01", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_plan_shows_the_seats_an_organization_on_it_may_hold_from_configuration()
    {
        var billing = app.Services.GetRequiredService<IOptions<BillingOptions>>().Value;
        Assert.Equal([3, 7, 5, 10], billing.Plans.Select(p => p.Seats));   // appsettings' Free 3, Pro 5, Team 10; Builder set here

        var html = await PageAsync("/pricing");

        foreach (var plan in billing.Plans)
            Assert.Contains($"<li data-testid=\"plan-seats\">{plan.Seats} seats per organization</li>", Card(html, "plan", plan.Id), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("12.50", 1250)]
    [InlineData("$20", 2000)]
    [InlineData("7", 700)]
    [InlineData(" 12.5 ", 1250)]
    [InlineData("250.00", 25000)]
    public async Task A_custom_amount_in_bounds_goes_to_billing_in_cents(string usd, long cents)
    {
        var response = await app.CreateBrowserlessClient().GetAsync("/pricing?handler=custom&usd=" + Uri.EscapeDataString(usd));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal($"/billing?amount={cents}", response.Headers.Location?.OriginalString);
    }

    [Theory]
    [InlineData("6.99")]
    [InlineData("250.01")]
    [InlineData("12.345")]
    [InlineData("-10")]
    [InlineData("ten")]
    [InlineData("1e3")]
    [InlineData("1,00")]      // a decimal comma is not read as thousands: refused rather than taken as $100
    [InlineData("")]
    [InlineData("99999999999999999999999999")]
    public async Task A_custom_amount_out_of_bounds_or_malformed_is_refused_with_the_reason(string usd)
    {
        var html = await PageAsync("/pricing?handler=custom&usd=" + Uri.EscapeDataString(usd), HttpStatusCode.BadRequest);

        Assert.Contains("Enter an amount from $7 to $250, in dollars and cents", html, StringComparison.Ordinal);
        Assert.Contains("aria-invalid=\"true\"", html, StringComparison.Ordinal);
        Assert.NotEmpty(Rows(html));   // the rest of the page is still there
    }

    [Fact]
    public async Task Signed_out_visitors_get_the_page_and_every_page_links_it()
    {
        var response = await app.CreateBrowserlessClient().GetAsync("/pricing");
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);   // no redirect to the log-in page
        Assert.Contains("<h1 id=\"pricing-title\">", html, StringComparison.Ordinal);
        Assert.Contains("<caption", html, StringComparison.Ordinal);
        Assert.Matches("<th scope=\"row\">", html);
        Assert.Contains("<a href=\"/pricing\" aria-current=\"page\">Pricing</a>", html, StringComparison.Ordinal);
        Assert.DoesNotMatch("<script(?![^>]*src=)", html);   // the CSP allows no inline script or style
        Assert.DoesNotContain(" style=\"", html, StringComparison.Ordinal);

        var landing = await PageAsync("/");
        Assert.Contains("<a href=\"/pricing\">Pricing</a>", landing, StringComparison.Ordinal);
        Assert.Contains("href=\"/pricing\">See pricing</a>", landing, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signed_in_user_is_offered_every_plan_through_billing()
    {
        using var session = (await app.SignedInAsync("pricing")).Session;

        var html = await session.TextAsync("/pricing");

        var free = Card(html, "plan", "free");
        Assert.Contains("href=\"/billing?plan=free\">Choose Free</a>", free, StringComparison.Ordinal);
        Assert.DoesNotContain("/Account/Register", free, StringComparison.Ordinal);
        Assert.Contains("<a href=\"/dashboard\">Dashboard</a>", html, StringComparison.Ordinal);   // the account nav is still there
        Assert.Contains("aria-current=\"page\">Pricing</a>", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Billing_configuration_that_cannot_be_sold_stops_the_app_at_start()
    {
        // The real binary, as a deploy would start it: it must stop with every reason and no stack trace.
        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "--urls", "http://127.0.0.1:0"], new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing",
            ["ConnectionStrings__Default"] = "Host=127.0.0.1;Database=not_reached",
            ["Jobs__SchedulerEnabled"] = "false",
            ["Billing__Plans__0__MonthlyPriceCents"] = "500",
            ["Billing__Plans__1__Id"] = "pro",
            ["Billing__CreditPacks__1__PriceCents"] = "10",
            ["Billing__CustomAmountMinCents"] = "5000",
            ["Billing__CustomAmountMaxCents"] = "1000",
        }, TimeSpan.FromSeconds(60));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("error: invalid configuration", run.StdErr, StringComparison.Ordinal);
        Assert.Contains("Billing:Plans needs a plan with a zero price", run.StdErr, StringComparison.Ordinal);
        Assert.Contains("Billing:Plans has the id 'pro' more than once", run.StdErr, StringComparison.Ordinal);
        Assert.Contains("Billing:CreditPacks:1", run.StdErr, StringComparison.Ordinal);   // a 10-cent pack, below Stripe's minimum
        Assert.Contains("CustomAmountMinCents is larger than", run.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StdErr, StringComparison.Ordinal);
    }

    /// <summary>A plan or pack card's markup: from its opening tag to the next card (or the end of the offer).</summary>
    private static string Card(string html, string kind, string id)
    {
        var start = html.IndexOf($"data-{kind}=\"{id}\">", StringComparison.Ordinal);
        Assert.True(start >= 0, $"no {kind} card {id}");
        var next = html.IndexOf("<li class=\"card", start, StringComparison.Ordinal);
        var end = next >= 0 ? next : html.IndexOf("id=\"models-title\"", start, StringComparison.Ordinal);
        return html[start..end];
    }

    [GeneratedRegex("<tr data-model=\"([^\"]+)\"([^>]*)>(.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex ModelRow();

    [GeneratedRegex("<li class=\"card plan\" data-plan=\"([^\"]+)\">")]
    private static partial Regex PlanCard();

    [GeneratedRegex("<li class=\"card pack\" data-pack=\"([^\"]+)\">")]
    private static partial Regex PackCard();
}
