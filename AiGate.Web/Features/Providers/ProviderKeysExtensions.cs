using AiGate.Web.Infrastructure.Cli;

namespace AiGate.Web.Features.Providers;

public static class ProviderKeysExtensions
{
    public static IHostApplicationBuilder AddProviderKeys(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ProviderKeyRing>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ProviderKeyRing>());
        builder.Services.AddScoped<ProviderKeyAdmin>();
        builder.Services.AddCliVerb(AddProviderKeyVerb);
        return builder;
    }

    /// <summary>
    /// <c>add-provider-key --provider NAME [--label L] &lt; key</c>: the key comes on standard input, never on the
    /// command line (where shell history and <c>ps</c> would keep it). Audited with actor <c>cli</c>.
    /// </summary>
    private static readonly CliVerb AddProviderKeyVerb = new("add-provider-key",
        "store a platform key for a provider in the vault; the key is read from standard input",
        [new CliOption("provider", "the provider's name (Providers__NAME__Kind)", Required: true), new CliOption("label", "a name for the key (default: the date)")],
        static async context =>
        {
            var secret = Console.IsInputRedirected ? await Console.In.ReadLineAsync(context.CancellationToken) : ReadHidden();
            if (string.IsNullOrWhiteSpace(secret)) throw new CliUsageException("no key on standard input (pipe it in: add-provider-key --provider NAME < file)");
            var (id, error) = await context.Services.GetRequiredService<ProviderKeyAdmin>()
                .AddAsync(context.Get("provider"), context.GetOptional("label"), secret, context.CancellationToken);
            if (error is not null) throw new CliUsageException(error);
            await context.Out.WriteLineAsync($"stored key {id} for provider {context.Get("provider").Trim()} (ending in {ProviderKey.LastFour(secret.Trim())})");
            return 0;
        });

    /// <summary>A line typed or pasted at a terminal, not echoed (so it is not left on screen or in a session recording).</summary>
    private static string ReadHidden()
    {
        Console.Error.Write("Paste the key and press Enter (it is not shown): ");
        var line = new System.Text.StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) break;
            if (key.Key == ConsoleKey.Backspace) { if (line.Length > 0) line.Length--; }
            else if (!char.IsControl(key.KeyChar)) line.Append(key.KeyChar);
        }
        Console.Error.WriteLine();
        return line.ToString();
    }
}
