using System.Diagnostics;
using System.Text;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// The built app (<see cref="RepoPaths.WebDll"/>) as a child process with the given environment, killed
/// (SIGKILL, whole tree) on dispose. It listens on port 0: the child binds a port nobody else can hold and
/// says which ("Now listening on:"); a port picked here could be taken by another test's app before the
/// child binds it, and the test would talk to that app instead.
/// </summary>
public sealed class AppProcess : IAsyncDisposable
{
    private const string ListeningMarker = "Now listening on: ";
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _disposed;

    private AppProcess(Process process) => _process = process;

    /// <summary>Everything the child wrote to stdout and stderr so far.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    public static AppProcess Start(IDictionary<string, string?> environment)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { RepoPaths.WebDll, "--urls", "http://127.0.0.1:0" },
            WorkingDirectory = Path.Combine(RepoPaths.Root, "AiGate.Web"),
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var (key, value) in environment) info.Environment[key] = value;
        var process = Process.Start(info)!;
        var app = new AppProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (app._log) app._log.AppendLine(e.Data);
            var at = e.Data.IndexOf(ListeningMarker, StringComparison.Ordinal);
            if (at >= 0) app._listening.TrySetResult(new Uri(e.Data[(at + ListeningMarker.Length)..].Trim()));
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (app._log) app._log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return app;
    }

    /// <summary>Waits (up to 60 s) until the child says where it listens and answers <c>/healthz</c>; returns its address.</summary>
    public async Task<Uri> WaitReadyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        await Task.WhenAny(_listening.Task, _process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.False(_process.HasExited, $"the instance exited:\n{Log}");
        Assert.True(_listening.Task.IsCompleted, $"the instance did not say where it listens:\n{Log}");
        var url = await _listening.Task;
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(2) };
        while (true)
        {
            Assert.False(_process.HasExited, $"the instance exited:\n{Log}");
            try { if ((await http.GetAsync("/healthz")).IsSuccessStatusCode) return url; }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            Assert.True(DateTime.UtcNow < deadline, $"the instance did not start:\n{Log}");
            await Task.Delay(200);
        }
    }

    /// <summary>SIGTERM, as Fly sends on a deploy: the app shuts down gracefully. Returns at once; see <see cref="WaitForExitAsync"/>.</summary>
    public Task TerminateAsync() => SignalAsync("TERM");

    /// <summary>Sends a signal by name: TERM, or STOP and CONT to freeze and thaw the process (a VM paused, a long GC).</summary>
    public async Task SignalAsync(string signal)
    {
        var (code, _, error) = await RepoPaths.RunAsync("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.True(code == 0, $"kill -{signal} failed: {error}");
    }

    /// <summary>Waits up to <paramref name="timeout"/> for the process to exit; its exit code, or null if it still runs.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { return null; }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL (no shutdown, no flush) and wait for the process to be gone.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await KillAsync();
        _process.Dispose();
    }
}
