using AiGate.Web.Data;
using AiGate.Web.Features.Admin;
using AiGate.Web.Infrastructure.Cli;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Features.Credits;

public static class CreditsExtensions
{
    public static IHostApplicationBuilder AddCredits(this IHostApplicationBuilder builder)
    {
        if (builder.Environment.IsProduction() &&
            builder.Configuration.GetValue<bool>($"{CreditsOptions.Section}:{nameof(CreditsOptions.DisableMeteringForBenchmarks)}"))
            throw new AiGate.Web.Infrastructure.StartupConfigurationException(
                "Credits__DisableMeteringForBenchmarks serves requests without charging; it is refused in Production.");
        builder.Services.AddOptions<CreditsOptions>().BindConfiguration(CreditsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<Ledger>();
        builder.Services.AddSingleton<CreditLeases>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CreditLeases>());
        builder.Services.AddSingleton<UsageWriter>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<UsageWriter>());
        builder.Services.AddSingleton<StreamCheckpoints>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StreamCheckpoints>());
        builder.Services.AddSingleton<Metering>();
        builder.Services.AddCliVerb(GrantCreditsVerb);
        return builder;
    }

    /// <summary><c>grant-credits --email E --usd N --reason R</c>: a ledger entry of kind grant (or a negative adjustment), audited (actor cli).</summary>
    private static readonly CliVerb GrantCreditsVerb = new("grant-credits", "add (or, with a negative amount, remove) credit for a user",
        [
            new CliOption("email", "the user's e-mail", Required: true),
            new CliOption("usd", "amount in USD, e.g. 10 or 2.50 (up to 6 decimals; negative removes credit)", Required: true),
            new CliOption("reason", "why, kept in the ledger", Required: true),
        ],
        static async context =>
        {
            var email = context.Get("email").Trim();
            var reason = context.Get("reason").Trim();
            if (reason.Length is 0 or > 200) throw new CliUsageException("--reason must be 1 to 200 characters");
            if (!decimal.TryParse(context.Get("usd"), System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var usd)
                || usd == 0 || Math.Abs(usd) > 1_000_000 || decimal.Round(usd, 6) != usd)
                throw new CliUsageException("--usd must be a non-zero amount of at most 1,000,000 with up to 6 decimals");
            var micros = Money.FromUsd(usd);
            var db = context.Services.GetRequiredService<AppDbContext>();
            var userId = await db.Users.AsNoTracking().Where(u => u.NormalizedEmail == email.ToUpperInvariant())
                .Select(u => (Guid?)u.Id).FirstOrDefaultAsync(context.CancellationToken)
                ?? throw new InvalidOperationException($"no user with e-mail {email}");
            // Audited like the admin page's grant (actor cli), in the ledger entry's transaction.
            var outcome = await context.Services.GetRequiredService<AccountActions>().AdjustCreditAsync(userId, micros, reason, context.CancellationToken, allowDebt: true);
            if (!outcome.Done) throw new InvalidOperationException(outcome.Message);
            var balance = await context.Services.GetRequiredService<Ledger>().GetBalanceAsync(userId, context.CancellationToken);
            await context.Out.WriteLineAsync(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{email}: {(micros > 0 ? "granted" : "removed")} ${Math.Abs(usd)}; balance ${balance.BalanceMicros / 1_000_000m}"));
            return 0;
        });
}
