using System.Net;
using AiGate.Web.Features.Vault;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit.Abstractions;

namespace AiGate.Web.Tests.Features.Vault;

/// <summary>KEK rotation (issue 14 #2) while two instances serve calls with vault keys.</summary>
public sealed class KekRotationTests(VaultApp app, ITestOutputHelper output) : IClassFixture<VaultApp>
{
    [Fact]
    public async Task Rotating_the_kek_while_two_instances_serve_fails_no_call_and_is_resumable()
    {
        await app.AddProviderKeyAsync("vaulted", "sk-rotation-key-3333333333", "rotation");
        var vault = app.Services.GetRequiredService<SecretVault>();
        for (var i = 0; i < 120; i++)   // owners beyond the platform, as BYOK accounts will be: 121 DEKs in all
            await vault.SealAsync(SecretVault.AccountOwner(Guid.NewGuid()), "byok-key", "row", "sk-account-secret", CancellationToken.None);
        await app.WaitForKeysAsync("vaulted", "3333");
        var oldKek = app.Kek;
        var newKek = VaultApp.NewKek();

        // The rolling deploy's first step: an instance on the new KEK that still knows the old one.
        var (client, apiKey, _) = await app.CreateApiClientAsync(creditMicros: 100_000_000);
        var environment = app.InstanceEnvironment();
        environment["Vault__Kek"] = newKek;
        environment["Vault__PreviousKeks"] = oldKek;
        await using var second = AppProcess.Start(environment);
        using var http = new HttpClient { BaseAddress = await second.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        await WaitForOkAsync(http);

        using var stop = new CancellationTokenSource();
        var load = new[] { ServeAsync(client, stop.Token), ServeAsync(http, stop.Token) };
        await Task.Delay(500);

        var before = await VerbAsync(environment, "vault-status");
        Assert.Contains($"KEK {Fingerprint(oldKek)}: 121 DEK(s), previous (Vault__PreviousKeks entry 1)", before);

        // Stopped after its first batch (a crash, a deploy), then run again: it continues with what is left.
        var keks = KeyEncryptionKeys.Parse(new VaultOptions { Kek = newKek, PreviousKeks = oldKek });
        using var interrupted = new CancellationTokenSource();
        await using (var dataSource = NpgsqlDataSource.Create(app.Database.ConnectionString))
        {
            var writer = new CancelAfterFirstLine(interrupted);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                KekRotation.RotateAsync(dataSource, keks, 50, writer, TimeProvider.System, interrupted.Token));
        }
        Assert.Equal(50L, await app.Database.ScalarAsync<long>($"select count(*) from vault_deks where kek_id = '{Fingerprint(newKek)}'"));
        var rotated = await VerbAsync(environment, "rotate-kek", "--batch", "40");
        Assert.Contains("done: 71 DEK(s) rewrapped", rotated);
        var after = await VerbAsync(environment, "vault-status");
        Assert.Contains($"KEK {Fingerprint(newKek)}: 121 DEK(s), current (Vault__Kek)", after);
        Assert.Contains("DEKs not on the current KEK: 0", after);

        // A key added after the rotation opens on both instances: the old-KEK instance holds the DEK in memory.
        await app.AddProviderKeyAsync("vaulted", "sk-after-rotation-1212121212", "after rotation");
        await app.WaitForKeysAsync("vaulted", "3333", "1212");
        await Task.Delay(1500);
        stop.Cancel();
        var results = await Task.WhenAll(load);
        output.WriteLine($"vault-status before:\n{before}\nrotate-kek:\n{rotated}\nvault-status after:\n{after}");
        output.WriteLine($"calls during the rotation: in-process instance {results[0].Ok} ok / {results[0].Failed} failed, second instance {results[1].Ok} ok / {results[1].Failed} failed");
        Assert.All(results, r => Assert.True(r.Failed == 0 && r.Ok > 10, $"{r.Ok} ok, {r.Failed} failed: {r.FirstFailure}"));

        // The deploy's last step: the old KEK removed; a fresh instance opens every key with the new KEK alone.
        var newOnly = app.InstanceEnvironment();
        newOnly["Vault__Kek"] = newKek;
        await using var third = AppProcess.Start(newOnly);
        using var thirdHttp = new HttpClient { BaseAddress = await third.WaitReadyAsync(), Timeout = TimeSpan.FromSeconds(30) };
        thirdHttp.DefaultRequestHeaders.Authorization = http.DefaultRequestHeaders.Authorization;
        await WaitForOkAsync(thirdHttp);
        app.Upstream.Reset();
        for (var i = 0; i < 4; i++) Assert.Equal(HttpStatusCode.OK, (await VaultApp.ChatAsync(thirdHttp, VaultApp.VaultModel)).StatusCode);
        Assert.Equal(["sk-after-rotation-1212121212", "sk-rotation-key-3333333333"], app.KeysSeen().Distinct().Order(StringComparer.Ordinal));
        Assert.DoesNotContain("cannot be opened", third.Log);

        // An instance that knows only the old KEK cannot open the rewrapped DEK, and says so without a secret.
        var oldOnly = app.InstanceEnvironment();
        oldOnly["Vault__Kek"] = oldKek;
        var status = await VerbAsync(oldOnly, "vault-status");
        Assert.Contains($"KEK {Fingerprint(newKek)}: 121 DEK(s), UNKNOWN", status);
        Assert.DoesNotContain(oldKek, status + before + after + rotated);
        Assert.DoesNotContain(newKek, status + before + after + rotated);
    }

    private sealed record Served(int Ok, int Failed, string? FirstFailure);

    private static async Task<Served> ServeAsync(HttpClient client, CancellationToken stop)
    {
        int ok = 0, failed = 0;
        string? first = null;
        while (!stop.IsCancellationRequested)
        {
            using var response = await VaultApp.ChatAsync(client, VaultApp.VaultModel);
            if (response.StatusCode == HttpStatusCode.OK) ok++;
            else
            {
                failed++;
                first ??= $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            }
        }
        return new Served(ok, failed, first);
    }

    private static async Task WaitForOkAsync(HttpClient http)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await VaultApp.ChatAsync(http, VaultApp.VaultModel)).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the instance never answered 200");
            await Task.Delay(200);
        }
    }

    private static async Task<string> VerbAsync(Dictionary<string, string?> environment, params string[] verb)
    {
        var (code, stdout, stderr) = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, .. verb], environment);
        Assert.True(code == 0, $"{string.Join(' ', verb)} exited {code}:\n{stdout}\n{stderr}");
        return stdout;
    }

    private static string Fingerprint(string kek) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Convert.FromBase64String(kek)))[..8];

    /// <summary>Stops the rotation as it reports its first committed batch, as a crash right after a commit would.</summary>
    private sealed class CancelAfterFirstLine(CancellationTokenSource cancel) : StringWriter
    {
        public override Task WriteLineAsync(string? value)
        {
            cancel.Cancel();
            return base.WriteLineAsync(value);
        }
    }
}
