using System.Globalization;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// AllocProfile TRACE.nettrace CALLS [TOP]: the runtime samples an AllocationTick about every 100 KB allocated,
// naming the type of the object that crossed the line, with the stack that allocated it. Summed, the ticks are an
// estimate of where the bytes go: per type, and per the nearest frame of AiGate's own code (or the first frame
// outside the runtime's core libraries when no AiGate frame is on the stack). CALLS is how many calls the trace
// covered, to print bytes per call.
// AllocProfile cpu TRACE.nettrace CALLS [TOP]: the same for a CPU-sampling capture (the runtime's sample profiler, a
// stack per thread every millisecond): samples of threads running managed code, by the component of the innermost
// frame, by the method at the top of the stack, and by the nearest AiGate frame, in microseconds per call.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length >= 3 && args[0] == "cpu") return CpuProfile.Run(args[1], double.Parse(args[2]), args.Length > 3 ? int.Parse(args[3]) : 25);
if (args.Length < 2) { Console.Error.WriteLine("usage: AllocProfile [cpu] TRACE.nettrace CALLS [TOP]"); return 2; }
var calls = double.Parse(args[1]);
var top = args.Length > 2 ? int.Parse(args[2]) : 25;

var byType = new Dictionary<string, long>(StringComparer.Ordinal);
var byFrame = new Dictionary<string, long>(StringComparer.Ordinal);
long total = 0;
var etlx = TraceLog.CreateFromEventPipeDataFile(args[0]);
using (var log = new TraceLog(etlx))
{
    foreach (var e in log.Events)
    {
        if (e is not GCAllocationTickTraceData tick) continue;
        var type = tick.TypeName is { Length: > 0 } t ? t : "(unknown)";
        byType[type] = byType.GetValueOrDefault(type) + tick.AllocationAmount64;
        total += tick.AllocationAmount64;
        var frame = Frame(e.CallStack());
        byFrame[frame] = byFrame.GetValueOrDefault(frame) + tick.AllocationAmount64;
    }
}

Console.WriteLine($"sampled allocations: {total / 1024.0 / 1024.0:0.0} MB over {calls:0} calls = {total / calls / 1024.0:0.0} KB per call");
Print("type", byType);
Console.WriteLine();
Print("allocated under (nearest AiGate frame, else the first frame outside System.Private.CoreLib)", byFrame);
return 0;

void Print(string heading, Dictionary<string, long> table)
{
    Console.WriteLine($"{heading,-100} {"KB/call",8} {"share",6}");
    foreach (var (name, bytes) in table.OrderByDescending(p => p.Value).Take(top))
        Console.WriteLine($"{(name.Length > 100 ? name[..97] + "..." : name),-100} {bytes / calls / 1024.0,8:0.00} {100.0 * bytes / total,5:0.0}%");
}

static string Frame(TraceCallStack? stack)
{
    string? outsideCore = null;
    for (var s = stack; s is not null; s = s.Caller)
    {
        var method = s.CodeAddress.FullMethodName;
        if (string.IsNullOrEmpty(method)) continue;
        if (method.StartsWith("AiGate.", StringComparison.Ordinal)) return method;
        if (outsideCore is null && s.CodeAddress.ModuleName is { } module && module != "System.Private.CoreLib") outsideCore = $"{module}!{method}";
    }
    return outsideCore ?? "(no managed frame)";
}
