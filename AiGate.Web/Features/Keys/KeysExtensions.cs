using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Infrastructure;
using AiGate.Web.Infrastructure.Cli;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Features.Keys;

public static class KeysExtensions
{
    /// <summary>A fixed pepper for Development and tests only; Production must set Keys__Pepper.</summary>
    private const string DevelopmentPepper = "ZGV2ZWxvcG1lbnQtb25seS1wZXBwZXItbm90LWEtc2VjcmV0IQ==";

    public static IHostApplicationBuilder AddKeys(this IHostApplicationBuilder builder)
    {
        var pepper = builder.Configuration[$"{KeysOptions.Section}:{nameof(KeysOptions.Pepper)}"];
        if (builder.Environment.IsProduction())
        {
            if (string.IsNullOrEmpty(pepper) || !IsStrongPepper(pepper))
                throw new StartupConfigurationException("Keys__Pepper must be set to base64 of at least 32 random bytes (openssl rand -base64 32).");
        }
        builder.Services.AddOptions<KeysOptions>().BindConfiguration(KeysOptions.Section).Configure(o =>
        {
            o.Pepper ??= DevelopmentPepper;
            if (builder.Environment.IsProduction()) o.LiveKeys = true;
        });
        builder.Services.AddSingleton<ApiKeyHasher>();
        builder.Services.AddSingleton<ApiKeyCache>();
        builder.Services.AddScoped<ApiKeyIssuer>();
        builder.Services.AddSingleton<KeyUsageFlusher>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<KeyUsageFlusher>());
        builder.Services.AddCliVerb(CreateKeyVerb);
        return builder;
    }

    private static bool IsStrongPepper(string pepper)
    {
        Span<byte> bytes = stackalloc byte[pepper.Length];
        return Convert.TryFromBase64String(pepper, bytes, out var written) && written >= 32;
    }

    /// <summary><c>create-key --email E --name N</c>: issues a key for a user and prints it once; audited (actor cli).</summary>
    private static readonly CliVerb CreateKeyVerb = new("create-key", "issue an API key for a user and print it once",
        [new CliOption("email", "the user's e-mail", Required: true), new CliOption("name", "a name for the key", Required: true)],
        static async context =>
        {
            var email = context.Get("email").Trim();
            var name = context.Get("name").Trim();
            if (name.Length is 0 or > 64) throw new CliUsageException("--name must be 1 to 64 characters");
            var db = context.Services.GetRequiredService<AppDbContext>();
            var user = await db.Users.AsNoTracking()
                .Where(u => u.NormalizedEmail == email.ToUpperInvariant())
                .Select(u => new { u.Id, u.EmailConfirmed })
                .FirstOrDefaultAsync(context.CancellationToken)
                ?? throw new InvalidOperationException($"no user with e-mail {email}");
            if (!user.EmailConfirmed) throw new InvalidOperationException($"{email} has not confirmed their e-mail address; keys need a confirmed address");
            // The key and its audit row (actor cli) commit together.
            await using var transaction = await db.Database.BeginTransactionAsync(context.CancellationToken);
            var (key, secret) = await context.Services.GetRequiredService<ApiKeyIssuer>().IssueAsync(user.Id, name, new KeyLimits(), context.CancellationToken);
            context.Services.GetRequiredService<AuditLog>().Add(new AuditChange("key.create", $"key:{key.Id}",
                After: new { key.Name, key.Prefix, key.OwnerId }, Detail: $"user:{user.Id}"));
            await db.SaveChangesAsync(context.CancellationToken);
            await transaction.CommitAsync(context.CancellationToken);
            await context.Out.WriteLineAsync(secret);
            return 0;
        });
}
