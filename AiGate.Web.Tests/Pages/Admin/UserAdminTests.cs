using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using AiGate.Web.Infrastructure;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>
/// The Users list and the user page (/Admin/Users/{id}): every action's effect and its audit row (actor, before → after,
/// reason, request id), required reasons, and suspension reaching a second instance on the same database within 5 s.
/// </summary>
public sealed partial class UserAdminTests(AccountsApp app) : IClassFixture<AccountsApp>, IAsyncLifetime
{
    private const string Password = "a long enough passphrase";
    private WebApplicationFactory<Program> _other = null!;

    public Task InitializeAsync()
    {
        // A second instance on the same database, with its own key cache and notice listener.
        _other = SecondInstance.WithEcho(app.Database.ConnectionString, SecondInstance.NoPlanLimits);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _other.DisposeAsync();

    [Fact]
    public async Task Users_are_found_by_email_in_pages_and_each_links_to_its_page()
    {
        using var admin = await AdminAsync();
        var marker = Guid.NewGuid().ToString("N")[..10];
        var ids = new List<Guid>();
        for (var i = 0; i < 52; i++) ids.Add(await app.CreateUserAsync($"{marker}-{i:00}@example.test"));
        await app.GrantAsync(ids[^1], 7_250_000);

        var first = await admin.TextAsync($"/admin/users?q={marker.ToUpperInvariant()}");
        Assert.Contains("52 users match · page 1 of 2", first, StringComparison.Ordinal);
        Assert.Equal(50, UserRows().Matches(first).Count);
        Assert.Contains($"href=\"/Admin/Users/{ids[^1]}\">{marker}-51@example.test</a>", first, StringComparison.Ordinal);   // newest first
        Assert.Contains("$7.25", first, StringComparison.Ordinal);
        Assert.Contains($"/Admin/Users?q={marker.ToUpperInvariant()}&amp;p=2", first, StringComparison.Ordinal);
        var second = await admin.TextAsync($"/admin/users?q={marker}&p=2");
        Assert.Equal(2, UserRows().Matches(second).Count);
        Assert.Contains($"{marker}-00@example.test", second, StringComparison.Ordinal);
        Assert.Contains("0 users match", await admin.TextAsync("/admin/users?q=nobody-has-this-" + marker), StringComparison.Ordinal);

        var page = await admin.GetAsync($"/Admin/Users/{ids[0]}");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains($"<h1>{marker}-00@example.test</h1>", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync($"/Admin/Users/{Guid.NewGuid()}")).StatusCode);
    }

    [Fact]
    public async Task Granting_and_deducting_credit_post_a_ledger_entry_and_an_audit_row_and_a_deduction_never_creates_debt()
    {
        using var admin = await AdminAsync();
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 10_000_000);
        var url = $"/Admin/Users/{userId}";

        var granted = await admin.SubmitAsync(url, new() { ["direction"] = "grant", ["amount"] = "2.50", ["reason"] = "goodwill for the outage" }, url + "?handler=Credit");
        Assert.Equal(HttpStatusCode.Redirect, granted.StatusCode);
        Assert.Equal(12_500_000, await BalanceAsync(userId));
        Assert.Equal("grant|2500000|goodwill for the outage", await app.Database.ScalarAsync<string>(
            $"select kind || '|' || amount_micros || '|' || reference from ledger_entries where user_id = '{userId}' order by id desc limit 1"));
        var audit = await LastAuditAsync(userId);
        Assert.Equal("credit.grant", audit.Action);
        Assert.Equal("goodwill for the outage", audit.Reason);
        Assert.Matches("^admin-[0-9a-f]+@example.test$", audit.Actor);
        Assert.Contains("\"balanceMicros\":10000000", audit.Before, StringComparison.Ordinal);
        Assert.Contains("\"balanceMicros\":12500000", audit.After, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(audit.RequestId));
        var page = await admin.TextAsync(url);
        Assert.Contains("Granted $2.50; balance now $12.50.", page, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"available\">$12.50<", page, StringComparison.Ordinal);

        // Refused without a change or an audit row: more than is available, no reason, a malformed amount.
        var audits = await AuditCountAsync(userId);
        foreach (var (fields, message) in new (Dictionary<string, string>, string)[]
        {
            (new() { ["direction"] = "deduct", ["amount"] = "12.51", ["reason"] = "too much" }, "Deduct at most the available $12.50: a deduction never creates debt."),
            (new() { ["direction"] = "grant", ["amount"] = "5", ["reason"] = "  " }, "Give a reason: it goes to the audit log."),
            (new() { ["direction"] = "grant", ["amount"] = "1.0000001", ["reason"] = "x" }, "Enter an amount in USD above 0"),
            (new() { ["direction"] = "grant", ["amount"] = "-3", ["reason"] = "x" }, "Enter an amount in USD above 0"),
            (new() { ["direction"] = "steal", ["amount"] = "3", ["reason"] = "x" }, "Choose grant or deduct."),
        })
        {
            var refused = await admin.SubmitAsync(url, fields, url + "?handler=Credit");
            Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
            Assert.Contains(message, Regex.Match(await admin.TextAsync(url), "data-testid=\"admin-problem\">([^<]*)<").Groups[1].Value, StringComparison.Ordinal);
        }
        Assert.Equal(12_500_000, await BalanceAsync(userId));
        Assert.Equal(audits, await AuditCountAsync(userId));

        await admin.SubmitAsync(url, new() { ["direction"] = "deduct", ["amount"] = "12.5", ["reason"] = "duplicate grant" }, url + "?handler=Credit");
        Assert.Equal(0, await BalanceAsync(userId));
        Assert.Equal("adjustment|-12500000", await app.Database.ScalarAsync<string>(
            $"select kind || '|' || amount_micros from ledger_entries where user_id = '{userId}' order by id desc limit 1"));
        Assert.Equal(("credit.deduct", "duplicate grant"), (await LastAuditAsync(userId)) is var last ? (last.Action, last.Reason) : default);
        // The ledger and the balance agree: every change went through an entry.
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'"));
    }

    [Fact]
    public async Task Suspending_refuses_every_key_with_a_403_on_both_instances_within_5_seconds_and_the_users_pages_say_why()
    {
        using var admin = await AdminAsync();
        var email = $"suspect-{Guid.NewGuid():N}@example.test";
        var user = await app.CreateUserAsync(email, Password);
        await app.GrantAsync(user.Id, 5_000_000);
        var onA = ApiClient(app, await app.IssueKeyAsync(user.Id));
        var secondKey = await app.IssueKeyAsync(user.Id);
        var onB = ApiClient(_other, secondKey);
        Assert.Equal(HttpStatusCode.OK, (await onA.GetAsync("/api/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/models")).StatusCode);   // cached on B
        var url = $"/Admin/Users/{user.Id}";

        var noReason = await admin.SubmitAsync(url, new() { ["reason"] = "" }, url + "?handler=Suspend");
        Assert.Equal(HttpStatusCode.Redirect, noReason.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/models")).StatusCode);

        await admin.SubmitAsync(url, new() { ["reason"] = "card testing from this account" }, url + "?handler=Suspend");
        var suspendedAt = Stopwatch.StartNew();
        HttpResponseMessage answer;
        while ((answer = await onB.GetAsync("/api/v1/models")).StatusCode == HttpStatusCode.OK && suspendedAt.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        Assert.Equal(HttpStatusCode.Forbidden, answer.StatusCode);
        Assert.True(suspendedAt.Elapsed < TimeSpan.FromSeconds(5), $"instance B served the suspended account for {suspendedAt.Elapsed.TotalMilliseconds:0} ms");
        await AssertSuspendedEnvelopeAsync(answer);
        // Every endpoint, both instances, every key of the account. Instance A hears the notice on its own connection,
        // not necessarily before B: it gets the same 5 s.
        while ((answer = await onA.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode == HttpStatusCode.OK
               && suspendedAt.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        Assert.True(suspendedAt.Elapsed < TimeSpan.FromSeconds(5), $"instance A served the suspended account for {suspendedAt.Elapsed.TotalMilliseconds:0} ms");
        await AssertSuspendedEnvelopeAsync(answer);
        await AssertSuspendedEnvelopeAsync(await ApiClient(app, secondKey).PostAsJsonAsync("/api/v1/embeddings", new { model = "echo/echo-1", input = "hi" }));
        await AssertSuspendedEnvelopeAsync(await onB.GetAsync("/api/v1/models/echo/echo-1"));

        var audit = await LastAuditAsync(user.Id);
        Assert.Equal(("user.suspend", "card testing from this account"), (audit.Action, audit.Reason));
        Assert.Contains("\"suspendedAt\":null", audit.Before, StringComparison.Ordinal);
        Assert.Contains("\"suspensionReason\":\"card testing from this account\"", audit.After, StringComparison.Ordinal);
        Assert.Contains("data-testid=\"suspended\"", await admin.TextAsync(url), StringComparison.Ordinal);

        using var own = app.NewSession();
        await own.LogInAsync(email, Password);
        foreach (var page in (string[])["/dashboard", "/keys", "/billing"])
            Assert.Contains("Your account is suspended: card testing from this account.", await own.TextAsync(page), StringComparison.Ordinal);

        await admin.SubmitAsync(url, new() { ["reason"] = "cleared with the customer" }, url + "?handler=Unsuspend");
        var liftedAt = Stopwatch.StartNew();
        while ((await onB.GetAsync("/api/v1/models")).StatusCode != HttpStatusCode.OK && liftedAt.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        Assert.True(liftedAt.Elapsed < TimeSpan.FromSeconds(5), $"instance B refused the account {liftedAt.Elapsed.TotalMilliseconds:0} ms after the suspension was lifted");
        Assert.Equal(HttpStatusCode.OK, (await onA.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);
        Assert.Equal(("user.unsuspend", "cleared with the customer"), (await LastAuditAsync(user.Id)) is var lifted ? (lifted.Action, lifted.Reason) : default);
        Assert.DoesNotContain("Your account is suspended", await own.TextAsync("/dashboard"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Clearing_a_dispute_freeze_lets_the_keys_work_again_and_is_audited()
    {
        using var admin = await AdminAsync();
        var userId = await app.CreateUserAsync();
        await app.Database.ExecuteAsync($"""
            insert into billing_accounts (user_id, plan_id, cancel_at_period_end, state_as_of, dunning_step, updated_at, disputed_at)
            values ('{userId}', 'free', false, 0, 0, now(), now())
            """);
        var client = ApiClient(_other, await app.IssueKeyAsync(userId));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/models")).StatusCode);
        var url = $"/Admin/Users/{userId}";
        Assert.Contains("data-testid=\"disputed\"", await admin.TextAsync(url), StringComparison.Ordinal);

        await admin.SubmitAsync(url, new() { ["reason"] = "" }, url + "?handler=ClearDispute");
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from billing_accounts where user_id = '{userId}' and disputed_at is not null"));

        // The second instance has just looked the key up (frozen): the clearing's notice, not the cache's TTL, lets it in.
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/models")).StatusCode);
        await admin.SubmitAsync(url, new() { ["reason"] = "dispute won, evidence accepted" }, url + "?handler=ClearDispute");
        var clearedAt = Stopwatch.StartNew();
        while ((await client.GetAsync("/api/v1/models")).StatusCode != HttpStatusCode.OK && clearedAt.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        Assert.True(clearedAt.Elapsed < TimeSpan.FromSeconds(5), $"still frozen after {clearedAt.Elapsed.TotalMilliseconds:0} ms");
        var audit = await LastAuditAsync(userId);
        Assert.Equal(("dispute.clear", "dispute won, evidence accepted"), (audit.Action, audit.Reason));
        Assert.Contains("\"disputedAt\":\"", audit.Before, StringComparison.Ordinal);
        Assert.Contains("\"disputedAt\":null", audit.After, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoking_a_key_from_the_user_page_needs_a_reason_refuses_it_and_is_audited()
    {
        using var admin = await AdminAsync();
        var userId = await app.CreateUserAsync();
        var client = ApiClient(app, await app.IssueKeyAsync(userId));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/models")).StatusCode);
        var keyId = await app.Database.ScalarAsync<Guid>($"select id from api_keys where owner_id = '{userId}'");
        var url = $"/Admin/Users/{userId}";

        await admin.SubmitAsync(url, new() { ["keyId"] = keyId.ToString(), ["reason"] = "" }, url + "?handler=RevokeKey");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/models")).StatusCode);

        await admin.SubmitAsync(url, new() { ["keyId"] = keyId.ToString(), ["reason"] = "leaked in a public repo" }, url + "?handler=RevokeKey");
        // The notice reaches every instance's key cache (this one too) within moments of the commit.
        Assert.True(await WithinFiveSecondsAsync(async () => (await client.GetAsync("/api/v1/models")).StatusCode == HttpStatusCode.Unauthorized));
        var row = await app.Database.ScalarAsync<string>(
            $"select action || '|' || reason || '|' || detail from audit_log where target = 'key:{keyId}' order by id desc limit 1");
        Assert.Equal($"key.revoke|leaked in a public repo|user:{userId}", row);
        Assert.Contains("key.revoke", await admin.TextAsync(url), StringComparison.Ordinal);   // the user page's history finds it through the detail

        // Another user's key id changes nothing.
        var stranger = await app.CreateUserAsync();
        var strangerClient = ApiClient(app, await app.IssueKeyAsync(stranger));
        var strangerKey = await app.Database.ScalarAsync<Guid>($"select id from api_keys where owner_id = '{stranger}'");
        await admin.SubmitAsync(url, new() { ["keyId"] = strangerKey.ToString(), ["reason"] = "wrong page" }, url + "?handler=RevokeKey");
        Assert.Equal(HttpStatusCode.OK, (await strangerClient.GetAsync("/api/v1/models")).StatusCode);
    }

    [Fact]
    public async Task A_rate_limit_override_beats_the_plan_and_is_audited()
    {
        using var admin = await AdminAsync();
        var (client, _, userId) = await app.CreateApiClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).StatusCode);
        var url = $"/Admin/Users/{userId}";

        await admin.SubmitAsync(url, new() { ["rpm"] = "0", ["tpm"] = "", ["reason"] = "x" }, url + "?handler=RateLimits");
        Assert.Contains("Limits are whole numbers of at least 1", await admin.TextAsync(url), StringComparison.Ordinal);
        await admin.SubmitAsync(url, new() { ["rpm"] = "8", ["tpm"] = "", ["reason"] = "abusive retry loop" }, url + "?handler=RateLimits");
        Assert.True(await WithinFiveSecondsAsync(async () =>
            (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).Headers.GetValues("x-ratelimit-limit-requests").Single() == Share(8)));

        var statuses = new List<HttpStatusCode>();
        string? limit = null;
        for (var i = 0; i < 9; i++)
        {
            var response = await client.PostAsJsonAsync("/api/v1/chat/completions", Chat());
            limit ??= response.Headers.GetValues("x-ratelimit-limit-requests").Single();
            statuses.Add(response.StatusCode);
        }
        // Each live instance enforces its share of the account's limit (RateLimits).
        Assert.Equal(Share(8), limit);
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);
        var audit = await LastAuditAsync(userId);
        Assert.Equal(("user.rate-limits", "abusive retry loop"), (audit.Action, audit.Reason));
        Assert.Contains("\"requestsPerMinuteOverride\":null", audit.Before, StringComparison.Ordinal);
        Assert.Contains("\"requestsPerMinuteOverride\":8", audit.After, StringComparison.Ordinal);
        Assert.Contains("admin override", await admin.TextAsync(url), StringComparison.Ordinal);

        // Empty fields remove it: the plan applies again.
        await admin.SubmitAsync(url, new() { ["rpm"] = "", ["tpm"] = "", ["reason"] = "fixed their client" }, url + "?handler=RateLimits");
        Assert.True(await WithinFiveSecondsAsync(async () =>
            (await client.PostAsJsonAsync("/api/v1/chat/completions", Chat())).Headers.GetValues("x-ratelimit-limit-requests").Single() == Share(100_000)));
    }

    private string Share(long limit) =>
        Math.Max(1, limit / Math.Max(1, app.Services.GetRequiredService<InstanceRegistry>().LiveInstances)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Resending_the_confirmation_mail_queues_a_link_and_is_audited()
    {
        using var admin = await AdminAsync();
        var email = $"unconfirmed-{Guid.NewGuid():N}@example.test";
        var user = await app.CreateUserAsync(email, Password, confirmed: false);
        var url = $"/Admin/Users/{user.Id}";

        await admin.SubmitAsync(url, [], url + "?handler=ResendConfirmation");
        Assert.Contains("/Account/ConfirmEmail?userId=" + user.Id, await app.LinkInMailAsync(email, "confirm-email"), StringComparison.Ordinal);
        Assert.Equal("user.resend-confirmation", (await LastAuditAsync(user.Id)).Action);

        var confirmed = await app.CreateUserAsync();
        await admin.SubmitAsync($"/Admin/Users/{confirmed}", [], $"/Admin/Users/{confirmed}?handler=ResendConfirmation");
        Assert.Contains("already confirmed", await admin.TextAsync($"/Admin/Users/{confirmed}"), StringComparison.Ordinal);
        Assert.Equal(0, await AuditCountAsync(confirmed));
    }

    private static async Task AssertSuspendedEnvelopeAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        var error = JsonNode.Parse(body)!["error"]!;   // one envelope, nothing written after it
        Assert.Equal("account_suspended", error["code"]!.GetValue<string>());
        Assert.Equal("permission_error", error["type"]!.GetValue<string>());
        Assert.Contains("This account is suspended", error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null(error["param"]);
    }

    private static async Task<bool> WithinFiveSecondsAsync(Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            if (await condition()) return true;
            await Task.Delay(20);
        }
        return false;
    }

    private static object Chat() => new { model = "echo/echo-1", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 5 };

    private async Task<WebSession> AdminAsync()
    {
        var email = $"admin-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, Password, admin: true);
        var session = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync(email, Password)).StatusCode);
        return session;
    }

    private static HttpClient ApiClient(WebApplicationFactory<Program> factory, string key)
    {
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    private Task<long> BalanceAsync(Guid userId) =>
        app.Database.ScalarAsync<long>($"select coalesce((select balance_micros from credit_accounts where user_id = '{userId}'), 0)");

    private Task<long> AuditCountAsync(Guid userId) => app.Database.ScalarAsync<long>($"select count(*) from audit_log where target = 'user:{userId}'");

    private async Task<AuditRow> LastAuditAsync(Guid userId)
    {
        var row = await app.Database.ScalarAsync<string>($"""
            select concat_ws(chr(31), action, actor, coalesce(before_value, ''), coalesce(after_value, ''), coalesce(reason, ''), coalesce(request_id, ''))
            from audit_log where target = 'user:{userId}' order by id desc limit 1
            """);
        Assert.NotNull(row);
        var f = row.Split('\u001f');
        return new AuditRow(f[0], f[1], f[2], f[3], f[4], f[5]);
    }

    private sealed record AuditRow(string Action, string Actor, string Before, string After, string Reason, string RequestId);

    [GeneratedRegex("data-testid=\"user-row\"")]
    private static partial Regex UserRows();
}
