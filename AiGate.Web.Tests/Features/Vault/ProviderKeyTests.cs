using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Vault;

/// <summary>Platform provider keys in the vault (issue 14 #3): round robin, a refused key disabled, changes without a restart, the page, the verb.</summary>
public sealed class ProviderKeyTests(VaultApp app) : IClassFixture<VaultApp>
{
    private const string Password = "a long enough passphrase";

    private async Task<(WebSession Session, string Email)> AdminAsync()
    {
        var email = $"admin-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, Password, admin: true);
        var session = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync(email, Password)).StatusCode);
        return (session, email);
    }

    private async Task RetireAllAsync()
    {
        await app.Database.ExecuteAsync("update provider_keys set status = 'retired' where status <> 'retired'");
        await app.Services.GetRequiredService<ProviderKeyRing>().ReloadAsync(CancellationToken.None);
        app.Upstream.Reset();
        app.Upstream.RevokedKeys.Clear();
    }

    [Fact]
    public async Task Calls_are_spread_round_robin_over_the_providers_keys()
    {
        await RetireAllAsync();
        await app.AddProviderKeyAsync("vaulted", "sk-robin-one-1111111111", "one");
        await app.AddProviderKeyAsync("vaulted", "sk-robin-two-2222222222", "two");
        await app.WaitForKeysAsync("vaulted", "1111", "2222");
        var (client, _, _) = await app.CreateApiClientAsync();

        for (var i = 0; i < 10; i++) Assert.Equal(HttpStatusCode.OK, (await VaultApp.ChatAsync(client, VaultApp.VaultModel)).StatusCode);

        var seen = app.KeysSeen();
        Assert.Equal(10, seen.Count);
        Assert.Equal(5, seen.Count(k => k == "sk-robin-one-1111111111"));
        Assert.Equal(5, seen.Count(k => k == "sk-robin-two-2222222222"));
        for (var i = 1; i < seen.Count; i++) Assert.NotEqual(seen[i - 1], seen[i]);
        // The configuration key serves its own provider only.
        Assert.Equal(HttpStatusCode.OK, (await VaultApp.ChatAsync(client, VaultApp.ConfigModel)).StatusCode);
        Assert.Equal(VaultApp.ConfigKey, app.KeysSeen()[^1]);
    }

    [Fact]
    public async Task A_key_answering_401_is_disabled_for_good_the_admins_are_told_and_calls_go_on_with_the_other()
    {
        await RetireAllAsync();
        var (admin, adminEmail) = await AdminAsync();
        var bad = await app.AddProviderKeyAsync("vaulted", "sk-revoked-bad-9999999999", "revoked upstream");
        await app.AddProviderKeyAsync("vaulted", "sk-still-good-8888888888", "good");
        await app.WaitForKeysAsync("vaulted", "9999", "8888");
        app.Upstream.RevokedKeys["sk-revoked-bad-9999999999"] = 0;
        var (client, _, _) = await app.CreateApiClientAsync();

        for (var i = 0; i < 8; i++)
        {
            using var response = await VaultApp.ChatAsync(client, VaultApp.VaultModel);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var seen = app.KeysSeen();
        Assert.Equal(1, seen.Count(k => k == "sk-revoked-bad-9999999999"));
        Assert.Equal(8, seen.Count(k => k == "sk-still-good-8888888888"));
        await WaitUntilAsync(async () => await app.Database.ScalarAsync<string>($"select status from provider_keys where id = '{bad}'") == "disabled");
        Assert.Contains("HTTP 401", await app.Database.ScalarAsync<string>($"select last_error from provider_keys where id = '{bad}'"));
        Assert.Equal("gateway", await app.Database.ScalarAsync<string>($"select actor from audit_log where action = 'provider-key.disable' and target = 'provider-key:{bad}'"));
        var mail = Assert.Single(await app.MailToAsync(adminEmail), m => m.Kind == "provider-key-disabled");
        Assert.Contains("ending in 9999", mail.TextBody);
        Assert.DoesNotContain("sk-revoked-bad", mail.TextBody + mail.HtmlBody);
        var page = await admin.TextAsync("/Admin/ProviderKeys");
        Assert.Matches(new Regex("revoked upstream</th>\\s*<td><code>…9999</code></td>\\s*<td><span class=\"status status-disabled\""), page);
        Assert.Contains("HTTP 401 from the provider", page);

        // Re-enabled from the page (once the provider side is fixed): back in the rotation, audited.
        app.Upstream.RevokedKeys.Clear();
        var enabled = await admin.SubmitAsync("/Admin/ProviderKeys", new() { ["id"] = bad.ToString() }, "/Admin/ProviderKeys?handler=Enable");
        Assert.Equal(HttpStatusCode.Redirect, enabled.StatusCode);
        await app.WaitForKeysAsync("vaulted", "9999", "8888");
        Assert.Equal(adminEmail, await app.Database.ScalarAsync<string>($"select actor from audit_log where action = 'provider-key.enable' and target = 'provider-key:{bad}'"));
    }

    [Fact]
    public async Task The_page_adds_a_key_without_echoing_it_and_retires_it_and_both_are_audited()
    {
        await RetireAllAsync();
        var (admin, adminEmail) = await AdminAsync();
        const string secret = "sk-from-the-page-7777777777";

        var added = await admin.SubmitAsync("/Admin/ProviderKeys", new() { ["Input.Provider"] = "vaulted", ["Input.Label"] = "page key", ["Input.Secret"] = secret },
            "/Admin/ProviderKeys?handler=Add");
        Assert.Equal(HttpStatusCode.Redirect, added.StatusCode);
        var page = await admin.TextAsync("/Admin/ProviderKeys");
        Assert.Contains("…7777", page);
        Assert.DoesNotContain("from-the-page", page);
        Assert.Contains("type=\"password\"", page);
        var id = await app.Database.ScalarAsync<Guid>("select id from provider_keys where label = 'page key'");
        var audit = await app.Database.ScalarAsync<string>($"select actor || ' ' || after_value from audit_log where action = 'provider-key.add' and target = 'provider-key:{id}'");
        Assert.StartsWith(adminEmail, audit);
        Assert.Contains("7777", audit);
        Assert.DoesNotContain("from-the-page", audit);
        await app.WaitForKeysAsync("vaulted", "7777");

        // A refused add shows the error and does not put the key back into the form.
        var refused = await admin.SubmitAsync("/Admin/ProviderKeys", new() { ["Input.Provider"] = "nosuch", ["Input.Secret"] = "sk-never-echoed-123456" },
            "/Admin/ProviderKeys?handler=Add");
        var refusedPage = await refused.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Contains("No provider named", refusedPage);
        Assert.DoesNotContain("sk-never-echoed", refusedPage);

        var retired = await admin.SubmitAsync("/Admin/ProviderKeys", new() { ["id"] = id.ToString() }, "/Admin/ProviderKeys?handler=Retire");
        Assert.Equal(HttpStatusCode.Redirect, retired.StatusCode);
        await app.WaitForKeysAsync("vaulted");
        Assert.Equal("retired", await app.Database.ScalarAsync<string>($"select status from provider_keys where id = '{id}'"));
        Assert.Equal(1L, await app.Database.ScalarAsync<long>($"select count(*) from audit_log where action = 'provider-key.retire' and target = 'provider-key:{id}'"));
        var (client, _, _) = await app.CreateApiClientAsync();
        using var noKey = await VaultApp.ChatAsync(client, VaultApp.VaultModel);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, noKey.StatusCode);
    }

    [Fact]
    public async Task A_key_added_and_the_old_one_retired_reach_a_second_instance_within_seconds_without_a_restart()
    {
        await RetireAllAsync();
        var old = await app.AddProviderKeyAsync("vaulted", "sk-old-instance-4444444444", "old");
        var (client, apiKey, _) = await app.CreateApiClientAsync();
        var environment = app.InstanceEnvironment();
        environment["Vault__Kek"] = app.Kek;
        await using var second = AppProcess.Start(environment);
        using var http = new HttpClient { BaseAddress = await second.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        await WaitUntilAsync(async () => (await VaultApp.ChatAsync(http, VaultApp.VaultModel)).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60));
        Assert.Equal("sk-old-instance-4444444444", app.KeysSeen()[^1]);

        await app.AddProviderKeyAsync("vaulted", "sk-new-instance-5555555555", "new");
        await using (var scope = app.Services.CreateAsyncScope())
            Assert.Null(await scope.ServiceProvider.GetRequiredService<ProviderKeyAdmin>().RetireAsync(old, CancellationToken.None));
        var changed = Stopwatch.StartNew();
        await WaitUntilAsync(async () =>
        {
            app.Upstream.Reset();
            for (var i = 0; i < 4; i++) Assert.Equal(HttpStatusCode.OK, (await VaultApp.ChatAsync(http, VaultApp.VaultModel)).StatusCode);
            return app.KeysSeen().All(k => k == "sk-new-instance-5555555555");
        }, TimeSpan.FromSeconds(10));
        Assert.True(changed.Elapsed < TimeSpan.FromSeconds(5), $"the second instance took {changed.Elapsed} to pick the change up");

        app.Upstream.Reset();
        for (var i = 0; i < 4; i++) Assert.Equal(HttpStatusCode.OK, (await VaultApp.ChatAsync(client, VaultApp.VaultModel)).StatusCode);
        Assert.All(app.KeysSeen(), k => Assert.Equal("sk-new-instance-5555555555", k));
    }

    [Fact]
    public async Task The_add_provider_key_verb_reads_the_key_from_standard_input_and_audits_as_cli()
    {
        const string secret = "sk-from-stdin-6666666666";
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { RepoPaths.WebDll, "add-provider-key", "--provider", "vaulted", "--label", "scripted" },
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var (k, v) in app.InstanceEnvironment()) info.Environment[k] = v;
        info.Environment["Vault__Kek"] = app.Kek;
        using var process = Process.Start(info)!;
        await process.StandardInput.WriteLineAsync(secret);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(process.ExitCode == 0, await stderr);
        Assert.Contains("ending in 6666", await stdout);
        Assert.DoesNotContain("from-stdin", await stdout + await stderr);
        var id = await app.Database.ScalarAsync<Guid>("select id from provider_keys where label = 'scripted'");
        Assert.Equal("cli", await app.Database.ScalarAsync<string>($"select actor from audit_log where action = 'provider-key.add' and target = 'provider-key:{id}'"));
        Assert.Equal("cli", await app.Database.ScalarAsync<string>($"select created_by from provider_keys where id = '{id}'"));
        await app.WaitForKeysAsync("vaulted", [.. app.Services.GetRequiredService<ProviderKeyRing>().Active("vaulted").Select(k => k.Last4).Where(l => l != "6666"), "6666"]);
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not come true in time");
            await Task.Delay(100);
        }
    }
}
