using System.Diagnostics;

namespace AiGate.E2E.Infrastructure;

/// <summary>What a finished child process left: its exit code, standard output and standard error.</summary>
public sealed record ProcessResult(int ExitCode, string Output, string Errors)
{
    public override string ToString() => $"exit {ExitCode}\n{Output}\n--- stderr ---\n{Errors}";
}

/// <summary>Runs a short-lived child process (a verb of the app, a Node script) to completion under a deadline.</summary>
public static class ChildProcess
{
    public static async Task<ProcessResult> RunAsync(ProcessStartInfo psi, TimeSpan timeout)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{psi.FileName} {string.Join(' ', psi.ArgumentList)} did not finish within {timeout.TotalSeconds:0} s");
        }
        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Runs a script of AiGate.E2E/node-client with Node. Its packages (the official openai npm package) are
    /// installed by the project's build (<c>npm ci</c> when missing).
    /// </summary>
    public static Task<ProcessResult> NodeAsync(string script, params string[] args)
    {
        var dir = Path.Combine(Paths.Root, "AiGate.E2E", "node-client");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "openai")))
            throw new InvalidOperationException($"Run `npm ci` in {dir} first (building AiGate.E2E does).");
        var psi = new ProcessStartInfo("node") { WorkingDirectory = dir };
        psi.ArgumentList.Add(script);
        foreach (var arg in args) psi.ArgumentList.Add(arg);
        return RunAsync(psi, TimeSpan.FromSeconds(60));
    }
}
