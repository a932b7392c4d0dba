using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Demo;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Vault;

/// <summary>
/// The Data Protection key ring encrypted at rest with the vault (issue 14 #4), on built instances sharing one
/// database. They run in Development, where cookies may travel over plain http, so the test can carry them itself.
/// </summary>
public sealed partial class DataProtectionVaultTests
{
    [Fact]
    public async Task New_key_ring_keys_are_stored_sealed_plain_old_ones_still_open_and_cookies_work_across_instances_and_a_restart()
    {
        await using var database = await TestDatabase.CreateMigratedAsync();
        var kek = VaultApp.NewKek();
        Dictionary<string, string?> Environment(string? vaultKek) => new()
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development", ["ConnectionStrings__Default"] = database.ConnectionString,
            ["Jobs__SchedulerEnabled"] = "false", ["Vault__Kek"] = vaultKek,
        };

        // Before the vault: the key ring is written in plain text, as it always was.
        string plainCookie;
        await using (var before = AppProcess.Start(Environment(null)))
        {
            plainCookie = await LogInAsync(await before.WaitReadyAsync());
        }
        Assert.Equal(1L, await database.ScalarAsync<long>("select count(*) from data_protection_keys"));
        Assert.Contains("<masterKey", await database.ScalarAsync<string>("select xml from data_protection_keys"));
        // Expire the plain key so the next instance must make a new one (it still reads the old key's cookies).
        await database.ExecuteAsync("update data_protection_keys set xml = regexp_replace(xml, '<expirationDate>[^<]*</expirationDate>', '<expirationDate>2020-01-01T00:00:00Z</expirationDate>')");

        await using var first = AppProcess.Start(Environment(kek));
        var firstUrl = await first.WaitReadyAsync();
        var sealedCookie = await LogInAsync(firstUrl);
        await using var second = AppProcess.Start(Environment(kek));
        var secondUrl = await second.WaitReadyAsync();

        var keys = await RowsAsync(database);
        Assert.True(keys.Count >= 2, string.Join("\n", keys));
        foreach (var xml in keys.Skip(1))
        {
            Assert.Contains("<vaultEncryptedKey", xml);
            Assert.Contains("AiGate.Web.Features.Vault.VaultXmlDecryptor", xml);
            Assert.DoesNotContain("<masterKey", xml);
            Assert.DoesNotContain("<value>", xml);
        }

        Assert.True(await SignedInAsync(firstUrl, sealedCookie), "the instance that signed in does not read its own cookie");
        Assert.True(await SignedInAsync(secondUrl, sealedCookie), "another instance does not read the cookie");
        Assert.True(await SignedInAsync(secondUrl, plainCookie), "a cookie of the old plain-text key is no longer read");
        Assert.False(await SignedInAsync(secondUrl, sealedCookie[..^4] + "AAAA"), "a forged cookie was accepted");

        await second.KillAsync();
        await using var restarted = AppProcess.Start(Environment(kek));
        Assert.True(await SignedInAsync(await restarted.WaitReadyAsync(), sealedCookie), "the cookie is not read after a restart");
        Assert.DoesNotContain("No XML encryptor configured", first.Log + restarted.Log);
    }

    private static async Task<List<string>> RowsAsync(TestDatabase database)
    {
        await using var dataSource = database.CreateDataSource();
        await using var command = dataSource.CreateCommand("select xml from data_protection_keys order by id");
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync()) rows.Add(reader.GetString(0));
        return rows;
    }

    /// <summary>Logs the demo admin in through the login form; returns the <c>Cookie</c> header that carries the session.</summary>
    private static async Task<string> LogInAsync(Uri baseUrl)
    {
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = baseUrl };
        var page = await http.GetAsync("/Account/Login");
        var cookies = Cookies(page);
        var token = WebUtility.HtmlDecode(AntiforgeryToken().Match(await page.Content.ReadAsStringAsync()).Groups[1].Value);
        using var post = new HttpRequestMessage(HttpMethod.Post, "/Account/Login")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Input.Email"] = DemoSeeder.AdminEmail, ["Input.Password"] = DemoSeeder.AdminPassword, ["Input.RememberMe"] = "false",
                ["__RequestVerificationToken"] = token,
            }),
        };
        post.Headers.Add("Cookie", cookies);
        var answer = await http.SendAsync(post);
        Assert.True(answer.StatusCode == HttpStatusCode.Redirect, $"log-in answered {(int)answer.StatusCode}");
        var session = Cookies(answer);
        Assert.Contains("aigate=", session);
        return session;
    }

    private static async Task<bool> SignedInAsync(Uri baseUrl, string cookie)
    {
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = baseUrl };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/Admin/ProviderKeys");
        request.Headers.Add("Cookie", cookie);
        using var response = await http.SendAsync(request);
        return response.StatusCode == HttpStatusCode.OK;
    }

    private static string Cookies(HttpResponseMessage response) => string.Join("; ",
        response.Headers.TryGetValues("Set-Cookie", out var values) ? values.Select(v => v.Split(';')[0]) : []);

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryToken();
}
