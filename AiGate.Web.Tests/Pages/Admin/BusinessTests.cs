using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Usage;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>/Admin/Business: revenue against provider cost from real metered calls and Stripe webhooks, on the page and as CSV.</summary>
public sealed partial class BusinessTests(BusinessApp app) : IClassFixture<BusinessApp>
{
    private static string Iso(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    [Fact]
    public async Task Revenue_cost_and_margin_per_day_model_and_account_match_the_calls_and_the_refunds_and_disputes_match_the_webhooks()
    {
        app.Upstream.Reset();
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var (first, last) = (today.AddDays(-3), today);
        var alice = $"alice-{Guid.NewGuid():N}@example.test";
        var bob = $"bob-{Guid.NewGuid():N}@example.test";
        var (aliceApi, aliceId) = await app.ApiUserAsync(alice);
        var (bobApi, bobId) = await app.ApiUserAsync(bob);

        // Today, through the gateway: a Gpt call lists 98 µ$ and is charged 176 µ$; a Mini call lists 6 µ$ and is charged 8 µ$.
        await BusinessApp.CallAsync(aliceApi, BusinessApp.Gpt, 3);
        await BusinessApp.CallAsync(aliceApi, BusinessApp.Mini, 2);
        await BusinessApp.CallAsync(bobApi, BusinessApp.Gpt, 1);
        await app.WaitForUsageAsync();
        // Earlier days (a real call cannot be made in the past): one Gpt call two days ago, and one three days ago
        // metered before migration 0016, so without a provider cost.
        await app.Database.ExecuteAsync($"""
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, provider_cost_micros, estimated, streamed, status, latency_ms, created_at)
            select 'past-' || gen_random_uuid(), owner_id, id, '{BusinessApp.Gpt}', 'fake', 11, 7, 0, 176, 98, false, false, 200, 10,
                   '{Iso(today.AddDays(-2))}T10:00:00Z'::timestamptz from api_keys where owner_id = '{bobId}';
            insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens,
                                      cost_micros, provider_cost_micros, estimated, streamed, status, latency_ms, created_at)
            select 'old-' || gen_random_uuid(), owner_id, id, '{BusinessApp.Gpt}', 'fake', 11, 7, 0, 500, null, false, false, 200, 10,
                   '{Iso(today.AddDays(-3))}T23:30:00Z'::timestamptz from api_keys where owner_id = '{bobId}';
            """);
        // The rollup takes what is there so far; the next call stays raw above its watermark. The page must add both.
        await app.Services.GetRequiredService<UsageRollup>().RunAsync(CancellationToken.None);
        await BusinessApp.CallAsync(bobApi, BusinessApp.Mini, 1);
        await app.WaitForUsageAsync();

        // Stripe: alice buys $20 and half is refunded; bob buys $10 and disputes it.
        var alicePayment = await app.BuyAsync(aliceId, 2000);
        var bobPayment = await app.BuyAsync(bobId, 1000);
        await app.RefundAsync(alicePayment, 2000, 1000);
        await app.DisputeAsync(bobPayment, 1000);

        using var admin = await app.AdminAsync();
        var csvResponse = await admin.GetAsync($"/Admin/Business?handler=Csv&from={Iso(first)}&to={Iso(last)}");
        Assert.Equal(HttpStatusCode.OK, csvResponse.StatusCode);
        Assert.Equal("text/csv", csvResponse.Content.Headers.ContentType!.MediaType);
        Assert.Equal($"aigate-business-{Iso(first)}-to-{Iso(last)}.csv", csvResponse.Content.Headers.ContentDisposition!.FileNameStar
            ?? csvResponse.Content.Headers.ContentDisposition.FileName!.Trim('"'));
        var csv = await csvResponse.Content.ReadAsStringAsync();
        var lines = csv.Split("\r\n");
        Assert.Equal("", lines[^1]);   // every line ends in CRLF
        Assert.Equal([
            "section,day,model,account,requests,revenue_usd,provider_cost_usd,margin_usd,margin_percent,revenue_without_provider_cost_usd,amount_usd,note",
            // 9 calls: 1,404 µ$ charged; 904 µ$ of it on calls with a known cost of 508 µ$ (margin 396 µ$, 43.8 %); 500 µ$ without.
            "total,,,,9,0.001404,0.000508,0.000396,43.8,0.000500,,",
            $"day,{Iso(today.AddDays(-3))},,,1,0.000500,0.000000,0.000000,,0.000500,,",
            $"day,{Iso(today.AddDays(-2))},,,1,0.000176,0.000098,0.000078,44.3,0.000000,,",
            $"day,{Iso(today.AddDays(-1))},,,0,0.000000,0.000000,0.000000,,0.000000,,",
            $"day,{Iso(today)},,,7,0.000728,0.000410,0.000318,43.7,0.000000,,",
            "model,,biz/gpt,,6,0.001380,0.000490,0.000390,44.3,0.000500,,",
            "model,,biz/mini,,3,0.000024,0.000018,0.000006,25.0,0.000000,,",
            $"account,,,{bob},4,0.000860,0.000202,0.000158,43.9,0.000500,,",
            $"account,,,{alice},5,0.000544,0.000306,0.000238,43.8,0.000000,,",
        ], lines[..10]);
        // Newest first: the dispute took back bob's $10, the refund half of alice's $20. Outcomes carry commas, so they are quoted.
        Assert.Matches($"^dispute,{Iso(today)} \\d\\d:\\d\\d:\\d\\d,,{Regex.Escape(bob)},,,,,,,10\\.000000,\"dispute dp_\\w+ \\(fraudulent\\): keys frozen, took back 10\\.000000 USD, 0\\.000000 USD left as debt\"$", lines[10]);
        Assert.Matches($"^refund,{Iso(today)} \\d\\d:\\d\\d:\\d\\d,,{Regex.Escape(alice)},,,,,,,10\\.000000,\"charge ch_\\w+ refunded 1000 of 2000 cents: took back 10\\.000000 USD, 0\\.000000 USD left as debt\"$", lines[11]);
        Assert.Equal(13, lines.Length);

        var page = await admin.TextAsync($"/Admin/Business?from={Iso(first)}&to={Iso(last)}");
        Assert.Contains("data-testid=\"total-revenue\">$0.001404<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"total-cost\">$0.000508<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"total-margin\">$0.000396 (43.8 %)<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"total-refunds\">$10.00 taken back<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"total-disputes\">$10.00 taken back<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"credit-sold\">$30.00 in 2 payments<", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"uncosted-note\">$0.0005 of this revenue", page, StringComparison.Ordinal);
        Assert.Matches("<tr data-model=\"biz/gpt\">\\s*<th scope=\"row\">biz/gpt</th><td class=\"num\">6</td><td class=\"num\">\\$0.00138</td>" +
                       "\\s*<td class=\"num\">\\$0.00049</td><td class=\"num\">\\$0.00039</td><td class=\"num\">44.3 %</td>", page);
        var accounts = AccountRows().Matches(page).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal([bob, alice], accounts);

        // The default range is the last 30 days, today included: the same totals.
        var defaults = await admin.TextAsync("/Admin/Business");
        Assert.Contains($"value=\"{Iso(today.AddDays(-29))}\"", defaults, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"total-revenue\">$0.001404<", defaults, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("from=2026-02-30&to=2026-03-01", "as YYYY-MM-DD")]
    [InlineData("from=2026-03-02&to=2026-03-01", "starts after it ends")]
    [InlineData("from=2024-01-01&to=2026-01-01", "at most 366 days")]
    [InlineData("from=<script>&to=", "as YYYY-MM-DD")]
    public async Task A_bad_range_shows_why_and_the_default_range_and_its_CSV_is_refused_with_the_reason(string query, string reason)
    {
        using var admin = await app.AdminAsync();
        var page = await admin.GetAsync($"/Admin/Business?{query}");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains(reason, html, StringComparison.Ordinal);
        Assert.Contains($"value=\"{Iso(DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-29))}\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>&", html, StringComparison.Ordinal);

        var csv = await admin.GetAsync($"/Admin/Business?handler=Csv&{query}");
        Assert.Equal(HttpStatusCode.BadRequest, csv.StatusCode);
        Assert.Contains(reason, await csv.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_csv_is_for_admins_only()
    {
        using var anonymous = app.NewSession();
        var signedOut = await anonymous.GetAsync("/Admin/Business?handler=Csv");
        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
        Assert.StartsWith("/Account/Login", signedOut.Headers.Location!.PathAndQuery, StringComparison.Ordinal);

        var email = $"user-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, BusinessApp.Password);
        using var user = app.NewSession();
        await user.LogInAsync(email, BusinessApp.Password);
        var refused = await user.GetAsync("/Admin/Business?handler=Csv");
        Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
        Assert.StartsWith("/Account/AccessDenied", refused.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
    }

    [Fact]
    public void Csv_quotes_commas_quotes_and_line_breaks_and_defuses_formulas_but_not_negative_numbers()
    {
        var csv = new Csv()
            .Row("plain", "a,b", "say \"hi\"", "two\nlines", "cr\rhere", "")
            .Row("=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", CsvField.Number("-0.000176"), CsvField.Number("12.5"))
            .ToString();

        Assert.Equal(
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",\r\n" +
            "\"'=HYPERLINK(\"\"http://x\"\")\",'+1,'-1,'@SUM(A1),-0.000176,12.5\r\n", csv);
    }

    [GeneratedRegex("<tr data-account=\"[0-9a-f-]+\">\\s*<th scope=\"row\">([^<]+)</th>")]
    private static partial Regex AccountRows();
}
