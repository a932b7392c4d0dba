using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Features.Keys;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Keys;

/// <summary>
/// The keys page over HTTP, signed in through the real login form (RELIABILITY K3, K4, K6, K9, K12):
/// the secret is shown once and stored only as hash + prefix + last 4; rotate, revoke and rename act
/// on the owner's keys only; unconfirmed users cannot reach the page.
/// </summary>
public sealed partial class IndexTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private const string Password = "a long enough passphrase";

    [Fact]
    public async Task Signed_out_visitor_is_sent_to_log_in()
    {
        using var anonymous = app.NewSession();

        var response = await anonymous.GetAsync("/keys");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/Account/Login", response.Headers.Location?.AbsolutePath);
        Assert.Contains("ReturnUrl=%2Fkeys", response.Headers.Location?.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Created_key_is_shown_once_works_and_is_stored_only_as_hash_prefix_and_last4()
    {
        var (userId, session) = await app.SignedInAsync("keys", Password);

        var created = await CreateAsync(session, new()
        {
            ["Input.Name"] = "  laptop  ", ["Input.CreditLimitUsd"] = "12.50", ["Input.RequestsPerMinute"] = "60",
            ["Input.TokensPerMinute"] = "10000", ["Input.AllowedModels"] = "echo/echo-1",
        });
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);   // Post-Redirect-Get
        Assert.Equal("/keys", created.Headers.Location?.OriginalString);

        var page = await session.GetAsync("/keys");
        Assert.True(page.Headers.CacheControl?.NoStore, "the page with the secret must not be cached");
        var html = WebUtility.HtmlDecode(await page.Content.ReadAsStringAsync());
        var secret = SecretOn(html);
        Assert.True(ApiKeyFormat.IsWellFormed(secret), secret);
        Assert.Contains("This is the only time the key is shown", html, StringComparison.Ordinal);
        Assert.Contains("OPENAI_BASE_URL=https://localhost/api/v1", html, StringComparison.Ordinal);
        Assert.Contains($"OPENAI_API_KEY={secret}", html, StringComparison.Ordinal);

        // Stored: the keyed hash, prefix and last four; nothing in the row contains the secret or its random part.
        var row = Assert.Single(await RowsJsonAsync(userId));
        Assert.DoesNotContain(secret, row, StringComparison.Ordinal);
        Assert.DoesNotContain(secret[8..51], row, StringComparison.Ordinal);
        var key = Assert.Single(await KeysOfAsync(userId));
        Assert.Equal(app.Services.GetRequiredService<ApiKeyHasher>().Hash(secret), key.KeyHash);
        Assert.Equal((secret[..12], secret[^4..]), (key.Prefix, key.Last4));
        Assert.Equal(("laptop", 12_500_000L, 60, 10_000), (key.Name, key.CreditLimitMicros!.Value, key.RequestsPerMinute!.Value, key.TokensPerMinute!.Value));
        Assert.Equal(new[] { "echo/echo-1" }, key.AllowedModels);

        // It works against the API.
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(secret)).StatusCode);

        // A reload shows the list (prefix…last4), never the secret again.
        var reloaded = WebUtility.HtmlDecode(await session.TextAsync("/keys"));
        Assert.DoesNotContain(secret, reloaded, StringComparison.Ordinal);
        Assert.DoesNotContain("This is the only time the key is shown", reloaded, StringComparison.Ordinal);
        Assert.Contains($"{secret[..12]}…{secret[^4..]}", reloaded, StringComparison.Ordinal);
        Assert.Contains("$12.50 credit", reloaded, StringComparison.Ordinal);
        Assert.Contains(">active<", reloaded, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rotation_with_grace_keeps_both_keys_working_and_rotation_now_ends_the_old_key_within_two_seconds()
    {
        var (userId, session) = await app.SignedInAsync("keys", Password);
        var first = await CreateKeyAsync(session, "server");
        var firstId = Assert.Single(await KeysOfAsync(userId)).Id;
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(first)).StatusCode);   // cached now

        var rotated = await session.SubmitAsync("/keys", new() { ["id"] = firstId.ToString(), ["grace"] = "1h" }, "/keys?handler=Rotate");
        Assert.Equal(HttpStatusCode.Redirect, rotated.StatusCode);
        var html = WebUtility.HtmlDecode(await session.TextAsync("/keys"));
        var second = SecretOn(html);
        Assert.NotEqual(first, second);
        Assert.Contains("the old key keeps working until", html, StringComparison.Ordinal);
        Assert.Matches(@"expiring at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(rotated\)", html);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(first)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(second)).StatusCode);

        var secondId = (await KeysOfAsync(userId)).Single(k => k.ReplacedById is null).Id;
        await session.SubmitAsync("/keys", new() { ["id"] = secondId.ToString(), ["grace"] = "now" }, "/keys?handler=Rotate");
        var third = SecretOn(WebUtility.HtmlDecode(await session.TextAsync("/keys")));

        await AssertRefusedWithinTwoSecondsAsync(second);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(third)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(first)).StatusCode);   // its hour is not over
    }

    [Fact]
    public async Task Revoked_key_gets_401()
    {
        var (userId, session) = await app.SignedInAsync("keys", Password);
        var secret = await CreateKeyAsync(session, "ci");
        var id = Assert.Single(await KeysOfAsync(userId)).Id;
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(secret)).StatusCode);

        var revoked = await session.SubmitAsync("/keys", new() { ["id"] = id.ToString() }, "/keys?handler=Revoke");

        Assert.Equal(HttpStatusCode.Redirect, revoked.StatusCode);
        await AssertRefusedWithinTwoSecondsAsync(secret);
        var html = await session.TextAsync("/keys");
        Assert.Contains(">revoked<", html, StringComparison.Ordinal);
        Assert.DoesNotContain("handler=Rotate", html, StringComparison.Ordinal);   // nothing left to do with it
    }

    [Fact]
    public async Task Rename_changes_the_name_and_an_empty_name_is_refused()
    {
        var (userId, session) = await app.SignedInAsync("keys", Password);
        await CreateKeyAsync(session, "old name");
        var id = Assert.Single(await KeysOfAsync(userId)).Id;

        var renamed = await session.SubmitAsync("/keys", new() { ["id"] = id.ToString(), ["Rename.Name"] = "new name" }, "/keys?handler=Rename");
        Assert.Equal(HttpStatusCode.Redirect, renamed.StatusCode);
        Assert.Equal("new name", Assert.Single(await KeysOfAsync(userId)).Name);

        var empty = await session.SubmitAsync("/keys", new() { ["id"] = id.ToString(), ["Rename.Name"] = "" }, "/keys?handler=Rename");
        Assert.Equal(HttpStatusCode.OK, empty.StatusCode);
        Assert.Contains("Give the key a name.", await empty.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("new name", Assert.Single(await KeysOfAsync(userId)).Name);
    }

    [Fact]
    public async Task Another_users_key_cannot_be_revoked_renamed_or_rotated()
    {
        var (ownerId, owner) = await app.SignedInAsync("keys", Password);
        var secret = await CreateKeyAsync(owner, "mine");
        var id = Assert.Single(await KeysOfAsync(ownerId)).Id.ToString();
        var (strangerId, stranger) = await app.SignedInAsync("keys", Password);

        var revoke = await stranger.SubmitAsync("/keys", new() { ["id"] = id }, "/keys?handler=Revoke");
        var rename = await stranger.SubmitAsync("/keys", new() { ["id"] = id, ["Rename.Name"] = "stolen" }, "/keys?handler=Rename");
        var rotate = await stranger.SubmitAsync("/keys", new() { ["id"] = id, ["grace"] = "now" }, "/keys?handler=Rotate");
        var badRename = await stranger.SubmitAsync("/keys", new() { ["id"] = id, ["Rename.Name"] = "" }, "/keys?handler=Rename");

        Assert.All(new[] { revoke, rename, rotate, badRename }, r => Assert.Equal(HttpStatusCode.NotFound, r.StatusCode));
        var key = Assert.Single(await KeysOfAsync(ownerId));
        Assert.Equal("mine", key.Name);
        Assert.Null(key.RevokedAt);
        Assert.Null(key.ExpiresAt);
        Assert.Null(key.ReplacedById);
        Assert.Empty(await KeysOfAsync(strangerId));
        Assert.Equal(HttpStatusCode.OK, (await ApiAsync(secret)).StatusCode);
        Assert.DoesNotContain("mine", await stranger.TextAsync("/keys"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unconfirmed_user_cannot_see_or_create_keys()
    {
        var (userId, session) = await app.SignedInAsync("keys", Password);
        var token = await session.AntiforgeryTokenAsync("/keys");
        // The address becomes unconfirmed (as after an e-mail change); the claim follows with the security stamp check.
        await using (var scope = app.Services.CreateAsyncScope())
            await scope.ServiceProvider.GetRequiredService<AppDbContext>().Users.Where(u => u.Id == userId)
                .ExecuteUpdateAsync(s => s.SetProperty(u => u.EmailConfirmed, false));

        var page = await session.GetAsync("/keys");
        var create = await session.Http.PostAsync("/keys?handler=Create", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["Input.Name"] = "sneaky",
        }));

        foreach (var response in new[] { page, create })
        {
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            var path = response.Headers.Location?.AbsolutePath;
            Assert.True(path is "/Account/AccessDenied" or "/Account/Login", $"redirected to {path}");
        }
        Assert.Empty(await KeysOfAsync(userId));
        Assert.DoesNotContain(">Keys</a>", await session.TextAsync("/Account/Manage"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "", "", "Give the key a name.")]
    [InlineData("ok", "0", "", "Enter an amount from 0.01 to 1,000,000.")]
    [InlineData("ok", "1.234", "", "Use at most 2 decimals, e.g. 25.50.")]
    [InlineData("ok", "lots", "", "The value 'lots' is not valid for Credit limit in USD.")]
    [InlineData("ok", "", "nope/unknown-model", "Unknown model: nope/unknown-model.")]
    public async Task Invalid_input_re_renders_with_a_message_and_creates_nothing(string name, string credit, string model, string message)
    {
        var (userId, session) = await app.SignedInAsync("keys", Password);

        var response = await CreateAsync(session, new() { ["Input.Name"] = name, ["Input.CreditLimitUsd"] = credit, ["Input.AllowedModels"] = model });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var html = WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync());
        Assert.Contains(message, html, StringComparison.Ordinal);
        Assert.DoesNotContain("data-testid=\"new-key\"", html, StringComparison.Ordinal);
        Assert.Empty(await KeysOfAsync(userId));
    }

    [Fact]
    public async Task Signed_in_nav_links_to_the_keys_page()
    {
        var (_, session) = await app.SignedInAsync("keys", Password);

        Assert.Contains("<a href=\"/keys\">Keys</a>", await session.TextAsync("/Account/Manage"), StringComparison.Ordinal);
    }

    private static Task<HttpResponseMessage> CreateAsync(WebSession session, Dictionary<string, string> fields) =>
        session.SubmitAsync("/keys", fields, "/keys?handler=Create");

    /// <summary>Creates a key through the form and reads its secret from the page after the redirect.</summary>
    private static async Task<string> CreateKeyAsync(WebSession session, string name)
    {
        var created = await CreateAsync(session, new() { ["Input.Name"] = name });
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);
        return SecretOn(WebUtility.HtmlDecode(await session.TextAsync("/keys")));
    }

    private static string SecretOn(string html)
    {
        var match = NewKey().Match(html);
        Assert.True(match.Success, "the page shows no new key");
        return match.Groups[1].Value;
    }

    private async Task<HttpResponseMessage> ApiAsync(string secret)
    {
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return await client.GetAsync("/api/v1/models");
    }

    private async Task AssertRefusedWithinTwoSecondsAsync(string secret)
    {
        var since = Stopwatch.StartNew();
        HttpStatusCode status;
        while ((status = (await ApiAsync(secret)).StatusCode) == HttpStatusCode.OK && since.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.True(since.Elapsed < TimeSpan.FromSeconds(2), $"the key was accepted for {since.Elapsed.TotalMilliseconds:0} ms");
    }

    private async Task<List<ApiKey>> KeysOfAsync(Guid userId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Set<ApiKey>().AsNoTracking().Where(k => k.OwnerId == userId).ToListAsync();
    }

    /// <summary>Every column of the user's key rows, as PostgreSQL renders them.</summary>
    private async Task<List<string>> RowsJsonAsync(Guid userId)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().Database
            .SqlQuery<string>($"select row_to_json(k)::text as \"Value\" from api_keys k where k.owner_id = {userId}").ToListAsync();
    }

    [GeneratedRegex("data-testid=\"new-key\">([^<]+)<")]
    private static partial Regex NewKey();
}
