namespace AiGate.Web.Infrastructure.Cli;

/// <summary>
/// Decides whether the process serves HTTP or runs one verb and exits (0 on success, 1 when the
/// verb failed, 2 for bad usage), and runs the verb.
/// </summary>
public static class CommandLine
{
    /// <summary>A first argument that is not an option (<c>--urls</c>, <c>--environment</c>…) names a verb.</summary>
    public static bool IsVerb(string[] args) => args.Length > 0 && !args[0].StartsWith('-');

    public static async Task<int> RunAsync(IServiceProvider services, string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var verbs = services.GetServices<CliVerb>().OrderBy(v => v.Name, StringComparer.Ordinal).ToList();
        var name = args[0];
        if (name is "help" or "--help")
        {
            await PrintUsageAsync(stdout, verbs);
            return 0;
        }
        var verb = verbs.FirstOrDefault(v => v.Name == name);
        if (verb is null)
        {
            await stderr.WriteLineAsync($"error: unknown verb '{name}'");
            await PrintUsageAsync(stderr, verbs);
            return 2;
        }

        try
        {
            var options = Parse(verb, args.AsSpan(1));
            await using var scope = services.CreateAsyncScope();
            return await verb.RunAsync(new CliContext(scope.ServiceProvider, options, stdout, ct));
        }
        catch (CliUsageException ex)
        {
            await stderr.WriteLineAsync($"error: {ex.Message}");
            await stderr.WriteLineAsync($"usage: {verb.Usage}");
            foreach (var option in verb.Options)
                await stderr.WriteLineAsync($"  --{option.Name,-12} {option.Help}");
            return 2;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Operators see the reason, not a stack trace; the message carries no secrets.
            await stderr.WriteLineAsync($"error: {verb.Name} failed: {ex.Message}");
            return 1;
        }
    }

    private static Dictionary<string, string?> Parse(CliVerb verb, ReadOnlySpan<string> args)
    {
        var options = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
                throw new CliUsageException($"unexpected argument '{arg}'");
            var name = arg[2..];
            var option = verb.Options.FirstOrDefault(o => o.Name == name)
                ?? throw new CliUsageException($"unknown option '--{name}'");
            if (options.ContainsKey(name))
                throw new CliUsageException($"--{name} is given twice");
            if (option.IsFlag)
            {
                options[name] = null;
                continue;
            }
            if (i + 1 >= args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                throw new CliUsageException($"--{name} needs a value");
            options[name] = args[++i];
        }
        foreach (var option in verb.Options.Where(o => o.Required && !options.ContainsKey(o.Name)))
            throw new CliUsageException($"--{option.Name} is required");
        return options;
    }

    private static async Task PrintUsageAsync(TextWriter writer, IReadOnlyList<CliVerb> verbs)
    {
        await writer.WriteLineAsync("usage: dotnet AiGate.Web.dll <verb> [options]   (no verb: serve HTTP)");
        await writer.WriteLineAsync("verbs:");
        foreach (var verb in verbs)
            await writer.WriteLineAsync($"  {verb.Usage,-60} {verb.Summary}");
    }
}
