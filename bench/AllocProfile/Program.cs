using System.Globalization;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// AllocProfile TRACE.nettrace CALLS [TOP]: the runtime samples an AllocationTick about every 100 KB allocated,
// naming the type of the object that crossed the line; summed per type, the ticks are an estimate of where the
// bytes go. CALLS is how many calls the trace covered, to print bytes per call.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length < 2) { Console.Error.WriteLine("usage: AllocProfile TRACE.nettrace CALLS [TOP]"); return 2; }
var calls = double.Parse(args[1]);
var top = args.Length > 2 ? int.Parse(args[2]) : 25;

var byType = new Dictionary<string, long>(StringComparer.Ordinal);
long total = 0;
using (var source = new EventPipeEventSource(args[0]))
{
    source.Clr.GCAllocationTick += (GCAllocationTickTraceData e) =>
    {
        var name = e.TypeName is { Length: > 0 } t ? t : "(unknown)";
        byType[name] = byType.GetValueOrDefault(name) + e.AllocationAmount64;
        total += e.AllocationAmount64;
    };
    source.Process();
}

Console.WriteLine($"sampled allocations: {total / 1024.0 / 1024.0:0.0} MB over {calls:0} calls = {total / calls / 1024.0:0.0} KB per call");
Console.WriteLine($"{"type",-90} {"KB/call",8} {"share",6}");
foreach (var (type, bytes) in byType.OrderByDescending(p => p.Value).Take(top))
    Console.WriteLine($"{(type.Length > 90 ? type[..87] + "..." : type),-90} {bytes / calls / 1024.0,8:0.00} {100.0 * bytes / total,5:0.0}%");
return 0;
