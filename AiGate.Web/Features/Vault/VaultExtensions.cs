using System.Globalization;
using AiGate.Web.Infrastructure;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Options;
using AiGate.Web.Infrastructure.Cli;
using Npgsql;

namespace AiGate.Web.Features.Vault;

public static class VaultExtensions
{
    public static IHostApplicationBuilder AddVault(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(VaultOptions.Section).Get<VaultOptions>() ?? new VaultOptions();
        builder.Services.AddSingleton(KeyEncryptionKeys.Parse(options));   // a malformed KEK stops the start here
        builder.Services.AddSingleton<SecretVault>();
        // The Data Protection key ring (cookies, antiforgery, Identity links) is sealed at rest once a KEK is set.
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(sp => new ConfigureOptions<KeyManagementOptions>(o =>
        {
            var vault = sp.GetRequiredService<SecretVault>();
            if (vault.IsConfigured) o.XmlEncryptor = new VaultXmlEncryptor(vault);
        }));
        builder.Services.AddCliVerb(RotateKekVerb);
        builder.Services.AddCliVerb(StatusVerb);
        return builder;
    }

    /// <summary>
    /// Before serving: in Production, secrets stored and no KEK (or only KEKs that wrap none of them) means every
    /// provider key and the cookie key ring would fail on first use, so the start stops here with the reason.
    /// Elsewhere the same finding is a warning. A database not reachable or not migrated yet is not decided here.
    /// </summary>
    public static async Task CheckAtStartAsync(IServiceProvider services, IHostEnvironment environment, ILogger logger)
    {
        var keks = services.GetRequiredService<KeyEncryptionKeys>();
        IReadOnlyList<(string KekId, long Deks, string Role)> status;
        try
        {
            status = await KekRotation.StatusAsync(services.GetRequiredService<NpgsqlDataSource>(), keks, CancellationToken.None);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return;
        }
        var stored = status.Sum(s => s.Deks);
        if (stored == 0) return;
        string? problem = null;
        if (keks.Current is null)
            problem = $"the vault holds {stored} encrypted key(s) but Vault__Kek is not set; set it to the KEK they were stored with (fly secrets set Vault__Kek=...).";
        else if (status.FirstOrDefault(s => s.Deks > 0 && !keks.ByFingerprint.ContainsKey(s.KekId)) is { KekId: not null } unknown)
            problem = $"{unknown.Deks} vault DEK(s) are wrapped by KEK {unknown.KekId}, which is neither Vault__Kek ({keks.Current.Fingerprint}) nor in Vault__PreviousKeks; add it to Vault__PreviousKeks (see docs/operations.md, KEK rotation).";
        if (problem is null) return;
        if (environment.IsProduction()) throw new StartupConfigurationException(problem);
        logger.LogWarning("Vault: {Problem}", problem);
    }

    /// <summary><c>rotate-kek [--batch N]</c>: rewraps every DEK under Vault__Kek; resumable, safe while instances serve.</summary>
    private static readonly CliVerb RotateKekVerb = new("rotate-kek",
        "rewrap every vault DEK under Vault__Kek (old KEKs in Vault__PreviousKeks); resumable, safe while instances serve",
        [new CliOption("batch", "DEKs per transaction (default 100)")],
        static async context =>
        {
            var batch = 100;
            if (context.GetOptional("batch") is { } text && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out batch) || batch is < 1 or > 10_000))
                throw new CliUsageException("--batch must be a whole number from 1 to 10000");
            var services = context.Services;
            await PrintStatusAsync(services, context.Out, "before", context.CancellationToken);
            await KekRotation.RotateAsync(services.GetRequiredService<NpgsqlDataSource>(), services.GetRequiredService<KeyEncryptionKeys>(), batch,
                context.Out, services.GetRequiredService<TimeProvider>(), context.CancellationToken);
            await PrintStatusAsync(services, context.Out, "after", context.CancellationToken);
            return 0;
        });

    /// <summary><c>vault-status</c>: how many DEKs each KEK wraps, KEKs named by fingerprint only.</summary>
    private static readonly CliVerb StatusVerb = new("vault-status", "how many vault DEKs are wrapped by which KEK (by fingerprint)", [],
        static async context =>
        {
            await PrintStatusAsync(context.Services, context.Out, null, context.CancellationToken);
            return 0;
        });

    private static async Task PrintStatusAsync(IServiceProvider services, TextWriter output, string? when, CancellationToken ct)
    {
        var keks = services.GetRequiredService<KeyEncryptionKeys>();
        var status = await KekRotation.StatusAsync(services.GetRequiredService<NpgsqlDataSource>(), keks, ct);
        await output.WriteLineAsync(when is null ? "vault status" : $"vault status ({when})");
        await output.WriteLineAsync($"  current KEK: {keks.Current?.Fingerprint ?? "none (Vault__Kek not set)"}");
        foreach (var (kekId, deks, role) in status)
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  KEK {kekId}: {deks} DEK(s), {role}"));
        var pending = status.Where(s => s.KekId != keks.Current?.Fingerprint).Sum(s => s.Deks);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  DEKs not on the current KEK: {pending}"));
    }
}
