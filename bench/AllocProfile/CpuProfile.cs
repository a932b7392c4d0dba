using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;

/// <summary>Where a CPU-sampling capture's running samples were: by component, by top method, by nearest AiGate frame.</summary>
internal static class CpuProfile
{
    public static int Run(string trace, double calls, int top)
    {
        var byComponent = new Dictionary<string, long>(StringComparer.Ordinal);
        var byMethod = new Dictionary<string, long>(StringComparer.Ordinal);
        var byAiGate = new Dictionary<string, long>(StringComparer.Ordinal);
        var waits = new Dictionary<string, long>(StringComparer.Ordinal);
        long running = 0, all = 0;
        var etlx = TraceLog.CreateFromEventPipeDataFile(trace);
        using (var log = new TraceLog(etlx))
        {
            foreach (var e in log.Events)
            {
                if (e.ProviderName != "Microsoft-DotNETCore-SampleProfiler" || e.EventName?.Contains("Sample", StringComparison.Ordinal) != true) continue;
                all++;
                // Type 2: the thread was running managed code; 1: outside it (waiting in the OS, mostly: not CPU we spend).
                if (e.PayloadNames.Contains("Type") && Convert.ToInt32(e.PayloadByName("Type")) != 2) continue;
                var stack = e.CallStack();
                if (stack is null) continue;
                running++;
                var leaf = stack.CodeAddress;
                Add(byMethod, leaf.FullMethodName is { Length: > 0 } m ? $"{leaf.ModuleName}!{m}" : "(unknown)");
                Add(byComponent, Component(stack));
                Add(byAiGate, NearestAiGate(stack));
                // Spinning for a contended lock or for work: who asked (the two frames under the wait).
                if (leaf.FullMethodName is { } name && (name.Contains("Monitor.Enter", StringComparison.Ordinal) || name.Contains("SpinWait", StringComparison.Ordinal)
                    || name.Contains("SpinWaiter", StringComparison.Ordinal)))
                    Add(waits, $"{Short(stack.Caller)} <- {Short(stack.Caller?.Caller)}");
            }
        }
        Console.WriteLine($"cpu samples: {all} taken, {running} running managed code, over {calls:0} calls = {running * 1000.0 / calls:0.0} µs of running threads per call (1 sample = 1 ms of one thread)");
        Print("component of the innermost frame that is not the runtime's core library", byComponent);
        Console.WriteLine();
        Print("method at the top of the stack", byMethod);
        Console.WriteLine();
        Print("nearest AiGate frame (inclusive)", byAiGate);
        Console.WriteLine();
        Print("spinning (a contended lock, or a worker waiting for work): its caller <- the caller's caller", waits);
        return 0;

        void Add(Dictionary<string, long> table, string key) => table[key] = table.GetValueOrDefault(key) + 1;

        void Print(string heading, Dictionary<string, long> table)
        {
            Console.WriteLine($"{heading,-100} {"µs/call",8} {"share",6}");
            foreach (var (name, samples) in table.OrderByDescending(p => p.Value).Take(top))
                Console.WriteLine($"{(name.Length > 100 ? name[..97] + "..." : name),-100} {samples * 1000.0 / calls,8:0.0} {100.0 * samples / running,5:0.0}%");
        }
    }

    /// <summary>The first frame, from the top, outside System.Private.CoreLib, named by its assembly's family.</summary>
    private static string Component(TraceCallStack stack)
    {
        for (var s = stack; s is not null; s = s.Caller)
        {
            var module = s.CodeAddress.ModuleName;
            if (string.IsNullOrEmpty(module) || module == "System.Private.CoreLib") continue;
            return module switch
            {
                _ when module.StartsWith("AiGate", StringComparison.Ordinal) => "AiGate",
                _ when module.StartsWith("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal) => "Kestrel",
                _ when module.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) => "ASP.NET Core (pipeline, routing, HTTP abstractions)",
                "System.Net.Http" => "HttpClient",
                "System.Net.Sockets" or "System.Net.Primitives" => "sockets",
                "System.Text.Json" => "System.Text.Json",
                "System.IO.Pipelines" => "pipelines",
                _ when module.StartsWith("Npgsql", StringComparison.Ordinal) => "Npgsql",
                _ when module.StartsWith("Polly", StringComparison.Ordinal) => "Polly",
                _ when module.StartsWith("Microsoft.ML.Tokenizers", StringComparison.Ordinal) => "tokenizer",
                _ => module,
            };
        }
        return "System.Private.CoreLib only (thread pool, tasks, timers, GC helpers)";
    }

    private static string Short(TraceCallStack? frame)
    {
        var name = frame?.CodeAddress.FullMethodName;
        if (string.IsNullOrEmpty(name)) return "?";
        var paren = name.IndexOf('(');
        return paren > 0 ? name[..paren] : name;
    }

    private static string NearestAiGate(TraceCallStack stack)
    {
        for (var s = stack; s is not null; s = s.Caller)
            if (s.CodeAddress.FullMethodName is { } m && m.StartsWith("AiGate.", StringComparison.Ordinal)) return m;
        return "(no AiGate frame: Kestrel, the pipeline, HttpClient's own work, the thread pool)";
    }
}
