using System.Security.Cryptography;
using System.Text;
using AiGate.Web.Features.Providers;
using AiGate.Web.Features.Vault;
using AiGate.Web.Infrastructure;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace AiGate.Web.Tests.Features.Vault;

/// <summary>The vault's envelope encryption (issue 14): round trip, tamper, nonces, and what the database holds.</summary>
public sealed class VaultTests(VaultApp app) : IClassFixture<VaultApp>
{
    private SecretVault Vault => app.Services.GetRequiredService<SecretVault>();

    [Fact]
    public async Task A_sealed_secret_opens_again_to_the_same_text_and_the_dek_is_stored_only_wrapped()
    {
        const string secret = "sk-proj-roundtrip-Ω-0123456789";
        var sealedSecret = await Vault.SealAsync(SecretVault.PlatformOwner, "test", "row-1", secret, CancellationToken.None);

        Assert.Equal(secret, await Vault.OpenAsync(SecretVault.PlatformOwner, "test", "row-1", sealedSecret, CancellationToken.None));
        Assert.Equal(1, sealedSecret.KeyVersion);
        Assert.Equal(Encoding.UTF8.GetByteCount(secret) + SecretBox.Overhead, sealedSecret.Ciphertext.Length);
        Assert.Equal(-1, sealedSecret.Ciphertext.AsSpan().IndexOf("roundtrip"u8));
        var kekId = await app.Database.ScalarAsync<string>("select kek_id from vault_deks where owner = 'platform'");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Convert.FromBase64String(app.Kek)))[..8], kekId);
        Assert.Equal(SecretBox.KeyBytes + SecretBox.Overhead, await app.Database.ScalarAsync<int>("select length(wrapped) from vault_deks where owner = 'platform'"));
    }

    [Theory]
    [InlineData("nonce", 0)]
    [InlineData("ciphertext", SecretBox.NonceBytes + 2)]
    [InlineData("tag", -1)]
    public async Task A_flipped_byte_anywhere_is_refused_with_a_clear_error(string where, int index)
    {
        var sealedSecret = await Vault.SealAsync(SecretVault.PlatformOwner, "test", "row-2", "sk-tamper-0123456789", CancellationToken.None);
        var bytes = sealedSecret.Ciphertext.ToArray();
        _ = where;   // names the case in the test's display name
        bytes[index < 0 ? bytes.Length + index : index] ^= 0x01;

        var error = await Assert.ThrowsAsync<VaultException>(() =>
            Vault.OpenAsync(SecretVault.PlatformOwner, "test", "row-2", sealedSecret with { Ciphertext = bytes }, CancellationToken.None));
        Assert.Contains("row row-2", error.Message);
        Assert.Contains("does not open: it was altered", error.Message);
        Assert.DoesNotContain("0123456789", error.Message);
    }

    [Fact]
    public async Task A_ciphertext_moved_to_another_row_purpose_owner_or_key_version_does_not_open()
    {
        var sealedSecret = await Vault.SealAsync(SecretVault.PlatformOwner, ProviderKeyRow.Purpose, "row-a", "sk-moved-0123456789", CancellationToken.None);
        var account = SecretVault.AccountOwner(Guid.NewGuid());
        await Vault.SealAsync(account, ProviderKeyRow.Purpose, "row-a", "the account's own secret", CancellationToken.None);   // the account gets its own DEK

        await Assert.ThrowsAsync<VaultException>(() => Vault.OpenAsync(SecretVault.PlatformOwner, ProviderKeyRow.Purpose, "row-b", sealedSecret, CancellationToken.None));
        await Assert.ThrowsAsync<VaultException>(() => Vault.OpenAsync(SecretVault.PlatformOwner, "other-purpose", "row-a", sealedSecret, CancellationToken.None));
        var wrongOwner = await Assert.ThrowsAsync<VaultException>(() => Vault.OpenAsync(account, ProviderKeyRow.Purpose, "row-a", sealedSecret, CancellationToken.None));
        Assert.Contains($"owner {account}", wrongOwner.Message);
        var wrongVersion = await Assert.ThrowsAsync<VaultException>(() =>
            Vault.OpenAsync(SecretVault.PlatformOwner, ProviderKeyRow.Purpose, "row-a", sealedSecret with { KeyVersion = 2 }, CancellationToken.None));
        Assert.Contains("version 2", wrongVersion.Message);
        Assert.NotEqual(
            await app.Database.ScalarAsync<byte[]>("select wrapped from vault_deks where owner = 'platform'"),
            await app.Database.ScalarAsync<byte[]>($"select wrapped from vault_deks where owner = '{account}'"));
    }

    [Fact]
    public async Task Two_stored_provider_keys_whose_ciphertexts_are_swapped_in_the_database_are_both_refused()
    {
        var first = await app.AddProviderKeyAsync("vaulted", "sk-swap-first-11111111", "first");
        var second = await app.AddProviderKeyAsync("vaulted", "sk-swap-second-2222222", "second");
        await app.Database.ExecuteAsync($"""
            update provider_keys k set secret = o.secret from provider_keys o
            where (k.id = '{first}' and o.id = '{second}') or (k.id = '{second}' and o.id = '{first}')
            """);

        var rows = await ReadRowAsync(first);
        var error = await Assert.ThrowsAsync<VaultException>(() =>
            Vault.OpenAsync(SecretVault.PlatformOwner, ProviderKeyRow.Purpose, first.ToString(), rows, CancellationToken.None));
        Assert.Contains($"row {first}", error.Message);
        var ring = app.Services.GetRequiredService<ProviderKeyRing>();
        await ring.ReloadAsync(CancellationToken.None);
        Assert.DoesNotContain(ring.Active("vaulted"), k => k.Id == first || k.Id == second);
        await app.Database.ExecuteAsync($"update provider_keys set status = 'retired' where id in ('{first}', '{second}')");
    }

    [Fact]
    public void Nonces_are_unique_over_100000_seals_under_one_key()
    {
        var key = RandomNumberGenerator.GetBytes(SecretBox.KeyBytes);
        var plaintext = "sk-same-secret-every-time"u8.ToArray();
        var nonces = new HashSet<string>(StringComparer.Ordinal);
        var ciphertexts = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 100_000; i++)
        {
            var blob = SecretBox.Seal(key, plaintext, "ad"u8);
            Assert.True(nonces.Add(Convert.ToBase64String(blob, 0, SecretBox.NonceBytes)), $"nonce repeated at seal {i}");
            ciphertexts.Add(Convert.ToBase64String(blob));
        }
        Assert.Equal(100_000, ciphertexts.Count);
    }

    [Fact]
    public async Task A_pg_dump_of_the_database_after_storing_secrets_contains_none_of_them_in_any_encoding()
    {
        string[] secrets = ["sk-proj-DumpCheckAlpha9f3b2c1d0e", "sk-ant-api03-DumpCheckBeta7a6b5c4d", "AIzaDumpCheckGamma1234567890abcd"];
        foreach (var secret in secrets) await app.AddProviderKeyAsync("vaulted", secret, "dump check");
        // A cookie key ring element written through the vault as well (item 4), so the dump covers it too.
        using (var client = app.CreateClient()) await client.GetAsync("/Account/Login");

        var connection = new NpgsqlConnectionStringBuilder(app.Database.ConnectionString);
        var (code, dump, error) = await RepoPaths.RunAsync("pg_dump", ["--no-owner", "--inserts", "-h", connection.Host!, "-p", connection.Port.ToString(),
            "-U", connection.Username!, "-d", connection.Database!], new Dictionary<string, string?> { ["PGPASSWORD"] = connection.Password });
        Assert.True(code == 0, error);
        Assert.Contains("provider_keys", dump);
        Assert.Contains("dump check", dump);
        foreach (var secret in secrets)
        {
            var bytes = Encoding.UTF8.GetBytes(secret);
            foreach (var form in new[] { secret, secret[4..20], Convert.ToBase64String(bytes), Convert.ToHexStringLower(bytes), Convert.ToHexString(bytes) })
                Assert.DoesNotContain(form, dump, StringComparison.OrdinalIgnoreCase);
            Assert.Contains(secret[^4..], dump);   // the last 4, shown on the page, are the only part kept in clear
        }
        Assert.DoesNotContain(app.Kek, dump);
        await app.Database.ExecuteAsync("update provider_keys set status = 'retired' where label = 'dump check'");
    }

    [Theory]
    [InlineData("not base64 at all!", "is not valid base64")]
    [InlineData("c2hvcnQ=", "decodes to 5 bytes")]
    public void A_malformed_kek_stops_the_start_with_a_message_that_names_the_setting_not_the_value(string kek, string expected)
    {
        var error = Assert.Throws<StartupConfigurationException>(() => KeyEncryptionKeys.Parse(new VaultOptions { Kek = kek }));
        Assert.Contains("Vault__Kek", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain(kek, error.Message);
        var previous = Assert.Throws<StartupConfigurationException>(() => KeyEncryptionKeys.Parse(new VaultOptions { Kek = VaultApp.NewKek(), PreviousKeks = "x" }));
        Assert.Contains("Vault__PreviousKeks (entry 1)", previous.Message);
    }

    [Fact]
    public async Task Production_refuses_to_start_without_the_kek_once_a_secret_is_stored()
    {
        await Vault.SealAsync(SecretVault.PlatformOwner, "test", "row-prod", "sk-prod-0123456789", CancellationToken.None);
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production", ["ConnectionStrings__Default"] = app.Database.ConnectionString,
            ["Stripe__SecretKey"] = "sk_live_docs_test", ["Stripe__WebhookSecret"] = "whsec_docs_test", ["Resend__ApiKey"] = "re_docs_test",
            ["Email__From"] = "AiGate <noreply@example.com>", ["Email__BaseUrl"] = "https://my-aigate.fly.dev",
            ["Keys__Pepper"] = VaultApp.NewKek(), ["Jobs__SchedulerEnabled"] = "false",
        };

        var (code, stdout, stderr) = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "--urls", "http://127.0.0.1:0"], environment, TimeSpan.FromSeconds(60));

        Assert.Equal(1, code);
        Assert.Contains("error: the vault holds", stderr);
        Assert.Contains("Vault__Kek is not set", stderr);
        Assert.DoesNotContain("   at ", stderr + stdout);   // a message, not a stack trace
    }

    private async Task<SealedSecret> ReadRowAsync(Guid id)
    {
        var secret = await app.Database.ScalarAsync<byte[]>($"select secret from provider_keys where id = '{id}'");
        var version = await app.Database.ScalarAsync<int>($"select key_version from provider_keys where id = '{id}'");
        return new SealedSecret(secret!, version);
    }
}
