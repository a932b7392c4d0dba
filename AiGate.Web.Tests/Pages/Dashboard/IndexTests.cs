using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Credits;
using AiGate.Web.Tests.Features.Usage;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Dashboard;

/// <summary>
/// <c>/dashboard</c> as a browser sees it: the signed-in user's balance, this month's spend and their
/// own requests, never anyone else's; usage rows are written straight to the table (metering has its own tests).
/// </summary>
public sealed partial class IndexTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private Task GrantAsync(Guid userId, long micros) =>
        app.Services.GetRequiredService<Ledger>().PostAsync(userId, LedgerKinds.Grant, micros, "test grant", null, CancellationToken.None);

    private Task InsertUsageAsync(Guid userId, string requestId, DateTimeOffset at, long cost, int status = 200, bool estimated = false,
        string model = "test/model") => UsageData.InsertAsync(app.Database,
        [new RawUsage(userId, Guid.NewGuid(), model, "fake", at, 1234, 567, 0, cost, status, 321, requestId, estimated)]);

    private static string TestId(string html, string id)
    {
        var match = Regex.Match(html, $"data-testid=\"{id}\"[^>]*>([^<]*)<");
        Assert.True(match.Success, $"no {id} on the page");
        return WebUtility.HtmlDecode(match.Groups[1].Value).Trim();
    }

    [Fact]
    public async Task A_signed_in_user_sees_their_balance_month_spend_and_only_their_requests()
    {
        var (userId, session) = await app.SignedInAsync("dash");
        var (otherId, _) = await app.SignedInAsync("dash");
        await GrantAsync(userId, 12_500_000);
        var now = DateTimeOffset.UtcNow;
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var mine1 = $"req-mine-{Guid.NewGuid():N}";
        var mine2 = $"req-mine-{Guid.NewGuid():N}";
        var lastMonth = $"req-old-{Guid.NewGuid():N}";
        var theirs = $"req-theirs-{Guid.NewGuid():N}";
        await InsertUsageAsync(userId, mine1, now.AddSeconds(-5), 1_234_567);
        await InsertUsageAsync(userId, mine2, now.AddSeconds(-1), 100_000, status: 502, estimated: true);
        await InsertUsageAsync(userId, lastMonth, monthStart.AddSeconds(-1), 5_000_000);
        await InsertUsageAsync(otherId, theirs, now.AddSeconds(-2), 9_999_999, model: "their/model");

        var response = await session.GetAsync("/dashboard");
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("$12.50", TestId(html, "balance-usd"));
        Assert.Equal("1,250", TestId(html, "balance-credits"));
        Assert.Equal("$1.334567", TestId(html, "month-spend"));   // last month's row does not count
        Assert.Equal("2", TestId(html, "month-requests"));
        Assert.Contains(mine1, html, StringComparison.Ordinal);
        Assert.Contains(mine2, html, StringComparison.Ordinal);
        Assert.Contains(lastMonth, html, StringComparison.Ordinal);   // the list is by recency, not by month
        Assert.DoesNotContain(theirs, html, StringComparison.Ordinal);
        Assert.DoesNotContain("their/model", html, StringComparison.Ordinal);
        Assert.DoesNotContain("data-testid=\"empty-state\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("data-testid=\"balance-notice\"", html, StringComparison.Ordinal);
        Assert.True(html.IndexOf(mine2, StringComparison.Ordinal) < html.IndexOf(mine1, StringComparison.Ordinal), "newest first");
        Assert.Contains(">estimated<", html, StringComparison.Ordinal);
        Assert.Contains(">502<", html, StringComparison.Ordinal);
        Assert.Contains("<svg", html, StringComparison.Ordinal);
        Assert.Equal(30, Regex.Matches(html, "<rect class=\"chart-bar\"").Count);
        Assert.DoesNotContain("style=", html, StringComparison.Ordinal);   // the CSP allows no inline style
    }

    [Fact]
    public async Task A_new_user_sees_the_empty_state_and_a_zero_balance_notice()
    {
        var (_, session) = await app.SignedInAsync("dash");

        var html = await session.TextAsync("/dashboard");

        Assert.Contains("No requests yet — create a key and call /api/v1", WebUtility.HtmlDecode(html), StringComparison.Ordinal);
        Assert.Contains("href=\"/keys\"", html, StringComparison.Ordinal);
        Assert.Contains("$0.00", TestId(html, "balance-notice"), StringComparison.Ordinal);
        Assert.Equal("$0.00", TestId(html, "month-spend"));
    }

    [Fact]
    public async Task A_low_balance_gets_a_notice()
    {
        var (userId, session) = await app.SignedInAsync("dash");
        await GrantAsync(userId, 250_000);

        var html = await session.TextAsync("/dashboard");

        Assert.Contains("low ($0.25)", TestId(html, "balance-notice"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_page_50_at_a_time_with_a_link_to_older_ones()
    {
        var (userId, session) = await app.SignedInAsync("dash");
        var start = DateTimeOffset.UtcNow.AddHours(-1);
        for (var i = 0; i < 55; i++) await InsertUsageAsync(userId, $"req-page-{i:D2}-{userId:N}", start.AddSeconds(i), 1);

        var first = await session.TextAsync("/dashboard");
        Assert.Equal(50, Regex.Matches(first, "data-testid=\"request-row\"").Count);
        Assert.Contains($"req-page-54-{userId:N}", first, StringComparison.Ordinal);
        Assert.Contains($"req-page-05-{userId:N}", first, StringComparison.Ordinal);
        Assert.DoesNotContain($"req-page-04-{userId:N}", first, StringComparison.Ordinal);
        var older = OlderLink().Match(first);
        Assert.True(older.Success, "no link to older requests");

        var second = await session.TextAsync(WebUtility.HtmlDecode(older.Groups[1].Value));
        Assert.Equal(5, Regex.Matches(second, "data-testid=\"request-row\"").Count);
        Assert.Contains($"req-page-04-{userId:N}", second, StringComparison.Ordinal);
        Assert.Contains($"req-page-00-{userId:N}", second, StringComparison.Ordinal);
        Assert.False(OlderLink().IsMatch(second), "the last page links to nothing older");
        Assert.DoesNotContain("data-testid=\"empty-state\"", second, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_users_request_id_as_the_page_anchor_shows_nothing_of_theirs()
    {
        var (_, session) = await app.SignedInAsync("dash");
        var (otherId, _) = await app.SignedInAsync("dash");
        await InsertUsageAsync(otherId, $"req-x-{otherId:N}", DateTimeOffset.UtcNow, 1);
        var theirId = await app.Database.ScalarAsync<long>($"select id from usage_events where user_id = '{otherId}'");

        var html = await session.TextAsync($"/dashboard?before={theirId + 1}");

        Assert.DoesNotContain($"req-x-{otherId:N}", html, StringComparison.Ordinal);
        Assert.Empty(Regex.Matches(html, "data-testid=\"request-row\""));
    }

    [Fact]
    public async Task The_nav_starts_with_dashboard_when_signed_in()
    {
        var (_, session) = await app.SignedInAsync("dash");

        var html = await session.TextAsync("/Account/Manage");

        var dashboard = html.IndexOf("<a href=\"/dashboard\">Dashboard</a>", StringComparison.Ordinal);
        Assert.True(dashboard > 0);
        Assert.True(dashboard < html.IndexOf("<a href=\"/Account/Manage\">Account</a>", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Signed_out_visitors_are_sent_to_log_in()
    {
        using var session = app.NewSession();

        var response = await session.GetAsync("/dashboard");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/Account/Login?ReturnUrl=%2Fdashboard", PathOf(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_whose_email_is_no_longer_confirmed_cannot_see_it()
    {
        var (userId, session) = await app.SignedInAsync("dash");
        Assert.Equal(HttpStatusCode.OK, (await session.GetAsync("/dashboard")).StatusCode);
        // The claim is refreshed with the security stamp (checked on every request in this fixture).
        await app.Database.ExecuteAsync($"update users set email_confirmed = false where id = '{userId}'");

        var response = await session.GetAsync("/dashboard");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/Account/", PathOf(response), StringComparison.Ordinal);   // access denied (or log in), never the page
    }

    private static string PathOf(HttpResponseMessage response) =>
        new Uri(new Uri("https://localhost"), response.Headers.Location!.OriginalString).PathAndQuery;

    [GeneratedRegex("<a href=\"(/dashboard\\?before=\\d+)\">Older")]
    private static partial Regex OlderLink();
}
