namespace AiGate.Web.Infrastructure.Cli;

/// <summary>
/// An operational command the app binary runs instead of serving: <c>dotnet AiGate.Web.dll migrate</c>.
/// Features register their verbs in DI (<see cref="CliExtensions.AddCliVerb"/>) next to the code they drive.
/// </summary>
public sealed record CliVerb(string Name, string Summary, IReadOnlyList<CliOption> Options, Func<CliContext, Task<int>> RunAsync)
{
    public string Usage => Options.Count == 0
        ? Name
        : Name + " " + string.Join(' ', Options.Select(o => o switch
        {
            { IsFlag: true } => $"[--{o.Name}]",
            { Required: true } => $"--{o.Name} <{o.Name}>",
            _ => $"[--{o.Name} <{o.Name}>]",
        }));
}

public sealed record CliOption(string Name, string Help, bool Required = false, bool IsFlag = false);

/// <summary>What a verb gets: services from a scope of the app's container, its parsed options, and where to print.</summary>
public sealed record CliContext(IServiceProvider Services, IReadOnlyDictionary<string, string?> Options, TextWriter Out, CancellationToken CancellationToken)
{
    public string Get(string name) => Options.TryGetValue(name, out var v) && v is not null ? v : throw new CliUsageException($"--{name} is required");
    public string? GetOptional(string name) => Options.TryGetValue(name, out var v) ? v : null;
    public bool Flag(string name) => Options.ContainsKey(name);
}

/// <summary>Bad input to a verb: printed with the verb's usage, exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);

public static class CliExtensions
{
    public static IServiceCollection AddCliVerb(this IServiceCollection services, CliVerb verb) => services.AddSingleton(verb);
}
