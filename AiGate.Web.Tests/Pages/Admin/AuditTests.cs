using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Admin;
using AiGate.Web.Tests.Infrastructure;
using Npgsql;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>/Admin/Audit: newest first, paged, filtered by actor, action, target and time; before → after readable; never editable.</summary>
public sealed partial class AuditTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private async Task<WebSession> AdminAsync()
    {
        var email = $"auditor-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, BusinessApp.Password, admin: true);
        var session = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync(email, BusinessApp.Password)).StatusCode);
        return session;
    }

    private async Task<long> InsertAsync(string at, string actor, string action, string target, string? before = null, string? after = null,
        string? reason = null, string? requestId = null)
    {
        await using var connection = new NpgsqlConnection(app.Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            insert into audit_log (at, actor, action, target, instance_id, before_value, after_value, reason, request_id)
            values ($1::timestamptz, $2, $3, $4, 'test-instance', $5, $6, $7, $8) returning id
            """, connection);
        foreach (var value in (object?[])[at, actor, action, target, before, after, reason, requestId])
            command.Parameters.Add(new() { Value = value ?? DBNull.Value });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static List<long> Ids(string html) => [.. RowIds().Matches(html).Select(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))];

    [Fact]
    public async Task Entries_come_newest_first_and_filter_by_actor_action_target_prefix_and_time()
    {
        var alice = await InsertAsync("2020-03-01T10:00:00Z", "Alice@example.test", "model.update", "model:openai/gpt-4o");
        var bob = await InsertAsync("2020-03-02T12:00:00Z", "bob@example.test", "credit.grant", "user:7f1c0000-0000-0000-0000-000000000001");
        var cli = await InsertAsync("2020-03-03T09:00:00Z", "cli", "model.create", "model:anthropic/claude-x");
        var route = await InsertAsync("2020-03-03T09:30:00Z", "alice@example.test", "route.update", "route:openai/gpt-4o/openai");
        await InsertAsync("2020-04-01T00:00:00Z", "alice@example.test", "model.update", "model:openai/gpt-4o");   // outside the month
        using var admin = await AdminAsync();
        async Task<List<long>> Find(string filters, string range = "from=2020-03-01&to=2020-03-31") =>
            Ids(await admin.TextAsync($"/Admin/Audit?{range}&{filters}"));

        Assert.Equal([route, cli, bob, alice], await Find(""));
        Assert.Equal([route, alice], await Find("actor=ALICE"));                 // a prefix, in any case
        Assert.Equal([cli, alice], await Find("action=model."));                 // every model action
        Assert.Equal([bob], await Find("action=credit.grant"));
        Assert.Equal([alice], await Find("target=model:openai/"));               // not route:openai/...
        Assert.Empty(await Find("target=openai"));                               // a prefix, not a substring
        Assert.Equal([route], await Find("actor=alice&action=route."));
        Assert.Equal([bob], await Find("", "from=2020-03-02&to=2020-03-02"));        // a whole day, inclusive
        Assert.Equal([cli, bob, alice], await Find("", "from=2020-03-01&to=2020-03-03T09:00"));   // up to and including that minute
        Assert.Equal([route], await Find("", "from=2020-03-03 09:01&to=2020-03-31"));
        Assert.Equal([cli], await Find("", "from=2020-03-03T09:00:00&to=2020-03-03T09:29:59"));
        Assert.Empty(await Find("target=model:openai/gpt-4o%25"));               // % is a character here, not a wildcard
        Assert.Empty(await Find("actor=nobody"));

        var bad = await admin.GetAsync("/Admin/Audit?from=yesterday");
        Assert.Equal(HttpStatusCode.OK, bad.StatusCode);
        var html = await bad.Content.ReadAsStringAsync();
        Assert.Contains("&quot;yesterday&quot; is not a time: use YYYY-MM-DD", html, StringComparison.Ordinal);
        Assert.Empty(Ids(html));
    }

    [Fact]
    public async Task Pages_hold_fifty_entries_and_the_older_link_walks_to_the_first_one()
    {
        var ids = new List<long>();
        for (var i = 0; i < 120; i++)
            ids.Add(await InsertAsync($"2019-01-01T00:{i / 60:00}:{i % 60:00}Z", "pager@example.test", "page.test", $"thing:{i}"));
        ids.Reverse();
        using var admin = await AdminAsync();

        var seen = new List<long>();
        var url = "/Admin/Audit?actor=pager%40example.test";
        for (var page = 0; page < 3; page++)
        {
            var html = await admin.TextAsync(url);
            var rows = Ids(html);
            Assert.Equal(page < 2 ? 50 : 20, rows.Count);
            seen.AddRange(rows);
            var older = OlderLink().Match(html);
            Assert.Equal(page < 2, older.Success);
            if (older.Success)
            {
                Assert.Contains("actor=pager@example.test", older.Groups[1].Value, StringComparison.Ordinal);   // the filter goes along
                url = WebUtility.HtmlDecode(older.Groups[1].Value);
            }
        }
        Assert.Equal(ids, seen);
    }

    [Fact]
    public async Task An_entry_shows_before_and_after_side_by_side_with_its_reason_and_request_id_all_encoded()
    {
        var target = $"model:test/{Guid.NewGuid():N}";
        var id = await InsertAsync("2021-05-05T05:05:05Z", "ops@example.test", "model.update", target,
            before: """{"name":"Old <b>name</b>","pricing":{"input":2500000,"output":10000000},"aliases":["a"]}""",
            after: """{"name":"Old <b>name</b>","pricing":{"input":2000000,"output":10000000},"aliases":["a","b"]}""",
            reason: "Provider's price list of <May>", requestId: "0HN7REQ:00000001");
        using var admin = await AdminAsync();

        var html = await admin.TextAsync($"/Admin/Audit?target={Uri.EscapeDataString(target)}");

        Assert.Equal([id], Ids(html));
        Assert.Matches("<tr class=\"changed\">\\s*<th scope=\"row\">pricing.input</th>\\s*<td class=\"changed-before\">2500000</td>\\s*<td class=\"changed-after\">2000000</td>", html);
        Assert.Matches("<tr class=\"changed\">\\s*<th scope=\"row\">aliases\\[1\\]</th>\\s*<td>&#x2013;</td>\\s*<td class=\"changed-after\">b</td>", html);
        Assert.Matches("<tr class=\"same\">\\s*<th scope=\"row\">name</th>\\s*<td>Old &lt;b&gt;name&lt;/b&gt;</td>", html);
        Assert.Contains("<div data-testid=\"audit-reason\">Provider&#x27;s price list of &lt;May&gt;</div>", html, StringComparison.Ordinal);
        Assert.Contains("<code data-testid=\"audit-request\">0HN7REQ:00000001</code>", html, StringComparison.Ordinal);
        Assert.Contains("2021-05-05 05:05:05", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_log_cannot_be_edited_the_page_takes_no_post_and_the_database_refuses_update_delete_and_truncate()
    {
        var id = await InsertAsync("2022-01-01T00:00:00Z", "ops@example.test", "credit.grant", "user:x", reason: "kept");
        using var admin = await AdminAsync();
        var token = await admin.AntiforgeryTokenAsync("/Admin/Audit");

        var post = await admin.Http.PostAsync("/Admin/Audit", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["id"] = id.ToString(System.Globalization.CultureInfo.InvariantCulture), ["reason"] = "changed",
        }));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);

        foreach (var sql in (string[])[$"update audit_log set reason = 'changed' where id = {id}", $"delete from audit_log where id = {id}", "truncate audit_log"])
        {
            var refused = await Assert.ThrowsAsync<PostgresException>(() => app.Database.ExecuteAsync(sql));
            Assert.Contains("audit_log is append-only", refused.MessageText, StringComparison.Ordinal);
        }
        Assert.Equal("kept", await app.Database.ScalarAsync<string>($"select reason from audit_log where id = {id}"));
    }

    [Fact]
    public void The_diff_flattens_nested_state_lists_changes_first_and_shows_text_that_is_not_json_as_one_value()
    {
        var lines = AuditDiff.Compare("""{"a":1,"b":{"c":"x","d":[1,2]},"e":null}""", """{"a":1,"b":{"c":"y","d":[1]},"f":true}""");
        Assert.Equal([
            new AuditDiffLine("b.c", "x", "y"), new AuditDiffLine("b.d[1]", "2", null), new AuditDiffLine("e", "null", null),
            new AuditDiffLine("f", null, "true"), new AuditDiffLine("a", "1", "1"), new AuditDiffLine("b.d[0]", "1", "1"),
        ], lines);
        Assert.Equal([new AuditDiffLine("(value)", null, "plain text, not JSON")], AuditDiff.Compare(null, "plain text, not JSON"));
        Assert.Empty(AuditDiff.Compare(null, null));
    }

    [GeneratedRegex("data-testid=\"audit-row\" data-id=\"(\\d+)\"")]
    private static partial Regex RowIds();

    [GeneratedRegex("<a data-testid=\"audit-older\" href=\"([^\"]+)\">")]
    private static partial Regex OlderLink();
}
