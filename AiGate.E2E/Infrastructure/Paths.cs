using System.Diagnostics;

namespace AiGate.E2E.Infrastructure;

public static class Paths
{
    public static string Root { get; } = FindRoot();

    /// <summary>Screenshots land here (git-ignored), named after the test that took them.</summary>
    public static string Screenshots { get; } = Directory.CreateDirectory(Path.Combine(Root, "TestResults", "screenshots")).FullName;

    /// <summary>The build configuration of the tests, which is the app's too (Debug, Release).</summary>
    public static string Configuration { get; } = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent?.Name ?? "Debug";

    public static string WebDll
    {
        get
        {
            var dll = Path.Combine(Root, "AiGate.Web", "bin", Configuration, "net10.0", "AiGate.Web.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("Build AiGate.Web first.", dll);
        }
    }

    /// <summary>The test PostgreSQL: AIGATE_TEST_PG from the test script, else the project's local server.</summary>
    public static string ServerConnectionString { get; } = FindServer();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AiGate.sln"))) return dir.FullName;
        throw new InvalidOperationException("AiGate.sln not found above the test assembly.");
    }

    private static string FindServer()
    {
        if (Environment.GetEnvironmentVariable("AIGATE_TEST_PG") is { Length: > 0 } fromEnv) return fromEnv;
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(Root, "scripts", "pg.sh"));
        psi.ArgumentList.Add("url");
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? output.Trim() : throw new InvalidOperationException("scripts/pg.sh url failed");
    }
}
