using System.Diagnostics;
using System.Net;
using System.Text;
using Npgsql;

namespace AiGate.E2E.Infrastructure;

/// <summary>
/// The real AiGate.Web build running as its own process on a free loopback port, in Development
/// (as the README's run command starts it), against a database of its own that it migrates at start.
/// </summary>
public class RunningApp : IAsyncLifetime
{
    private readonly StringBuilder _log = new();
    private Process? _process;
    private string _database = "";

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>The app's own database, for running verbs against it.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>What the app printed, for failure messages.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>Environment variables on top of the defaults, for the app and its verbs; override for a fixture.</summary>
    protected virtual IReadOnlyDictionary<string, string> ExtraEnvironment { get; } = new Dictionary<string, string>();

    public async Task InitializeAsync()
    {
        _database = $"e2e_{Guid.NewGuid():N}";
        await AdminAsync($"create database \"{_database}\"");
        ConnectionString = new NpgsqlConnectionStringBuilder(Paths.ServerConnectionString) { Database = _database }.ConnectionString;
        await BeforeStartAsync();
        // Port 0: the app picks a free port and says which, so no other app can take it first.
        var psi = StartInfo("--urls", "http://127.0.0.1:0");
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        _process = Process.Start(psi)!;
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_log) _log.AppendLine(e.Data);
            const string marker = "Now listening on: ";
            var at = e.Data.IndexOf(marker, StringComparison.Ordinal);
            // Production logs JSON lines, where the address ends at the closing quote.
            if (at >= 0) listening.TrySetResult(new Uri(e.Data[(at + marker.Length)..].Split('"')[0].Trim()));
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!listening.Task.IsCompleted)
        {
            if (_process.HasExited) throw new InvalidOperationException($"The app exited with {_process.ExitCode}:\n{Log}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The app did not start listening within 60 s:\n{Log}");
            await Task.Delay(100);
        }
        BaseUrl = await listening.Task;

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"The app exited with {_process.ExitCode}:\n{Log}");
            try
            {
                if ((await http.GetAsync(new Uri(BaseUrl, "/readyz"))).StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"The app did not become ready within 60 s:\n{Log}");
    }

    /// <summary>Runs once the database exists and before the app starts (a Production deploy's release step, say).</summary>
    protected virtual Task BeforeStartAsync() => Task.CompletedTask;

    /// <summary>
    /// Runs a command-line verb of the same build (<c>grant-credits --email E --usd 5 --reason r</c>) with this
    /// app's environment and database, as an operator would.
    /// </summary>
    public Task<ProcessResult> RunVerbAsync(params string[] args) => ChildProcess.RunAsync(StartInfo(args), TimeSpan.FromSeconds(60));

    /// <summary>The app's dll and its content root: the build, whose static web assets Development serves from the sources.</summary>
    protected virtual (string Dll, string ContentRoot) Build => (Paths.WebDll, Path.Combine(Paths.Root, "AiGate.Web"));

    /// <summary>The app's build with this app's environment and database: the server and its verbs never drift apart.</summary>
    private ProcessStartInfo StartInfo(params string[] args)
    {
        var (dll, contentRoot) = Build;
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = contentRoot };
        psi.ArgumentList.Add(dll);
        foreach (var arg in args) psi.ArgumentList.Add(arg);
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        psi.Environment["ConnectionStrings__Default"] = ConnectionString;
        foreach (var (name, value) in ExtraEnvironment) psi.Environment[name] = value;
        return psi;
    }

    /// <summary>Runs a verb that must succeed and returns what it printed (a created key, say).</summary>
    public async Task<string> RunVerbForOutputAsync(params string[] args)
    {
        var result = await RunVerbAsync(args);
        return result.ExitCode == 0 ? result.Output : throw new InvalidOperationException($"{args[0]}: {result}");
    }

    public virtual async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        NpgsqlConnection.ClearAllPools();
        await AdminAsync($"drop database if exists \"{_database}\" with (force)");
    }

    private static async Task AdminAsync(string sql)
    {
        var cs = new NpgsqlConnectionStringBuilder(Paths.ServerConnectionString) { Database = "postgres", Pooling = false }.ConnectionString;
        await using var connection = new NpgsqlConnection(cs);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
