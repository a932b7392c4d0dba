using System.Diagnostics;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>Where things are in the checkout, found from the test assembly's folder.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>The app's own build output (same configuration as the tests), for running it as a child process.</summary>
    public static string WebDll
    {
        get
        {
            // …/AiGate.Web.Tests/bin/<Configuration>/net10.0/
            var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent?.Name ?? "Debug";
            var dll = Path.Combine(Root, "AiGate.Web", "bin", configuration, "net10.0", "AiGate.Web.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("Build AiGate.Web first.", dll);
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AiGate.sln"))) return dir.FullName;
        throw new InvalidOperationException("AiGate.sln not found above the test assembly.");
    }

    /// <summary>Runs a command to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string StdOut, string StdErr)> RunAsync(
        string file, IEnumerable<string> args, IDictionary<string, string?>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) psi.ArgumentList.Add(arg);
        foreach (var (key, value) in env ?? new Dictionary<string, string?>()) psi.Environment[key] = value;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
