using System.Diagnostics;
using AiGate.Web.Features.Models;
using Microsoft.ML.Tokenizers;

// The corpus: the Markdown and C# files of the app, its tests and its docs (English prose and code), read once.
var root = args.Length > 0 ? args[0] : ".";
var texts = new[] { "AiGate.Web", "AiGate.Web.Tests", "AiGate.E2E", "docs" }
    .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(root, folder), "*.*", SearchOption.AllDirectories))
    .Where(p => (p.EndsWith(".md", StringComparison.Ordinal) || p.EndsWith(".cs", StringComparison.Ordinal))
        && !p.Contains("/obj/", StringComparison.Ordinal) && !p.Contains("/bin/", StringComparison.Ordinal) && !p.Contains("/Migrations/", StringComparison.Ordinal))
    .Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();
var chars = texts.Sum(t => (long)t.Length);
Console.WriteLine($"corpus: {texts.Length} files, {chars / 1024.0 / 1024:0.0} M chars");
Console.WriteLine($"{"encoding",-12} {"counter",-26} {"heap kept",10} {"load",8} {"tokens",11} {"M chars/s",10}");

foreach (var encoding in new[] { "o200k_base", "cl100k_base" })
{
    Measure(encoding, "AiGate BpeEncoding", () =>
    {
        var e = encoding == "o200k_base" ? BpeEncoding.O200kBase() : BpeEncoding.Cl100kBase();
        return (e, (Func<string, long>)(t => e.CountTokens(t)));
    });
    Measure(encoding, "Microsoft.ML.Tokenizers", () =>
    {
        var t = TiktokenTokenizer.CreateForEncoding(encoding);
        return (t, (Func<string, long>)(s => t.CountTokens(s)));
    });
}

void Measure(string encoding, string name, Func<(object Keep, Func<string, long> Count)> load)
{
    var before = GC.GetTotalMemory(forceFullCollection: true);
    var watch = Stopwatch.StartNew();
    var (keep, count) = load();
    var loadMs = watch.Elapsed.TotalMilliseconds;
    var kept = GC.GetTotalMemory(forceFullCollection: true) - before;
    long tokens = 0;
    foreach (var text in texts) tokens += count(text);   // warm-up pass (JIT, caches)
    var best = double.MaxValue;
    for (var round = 0; round < 3; round++)
    {
        watch.Restart();
        tokens = 0;
        foreach (var text in texts) tokens += count(text);
        best = Math.Min(best, watch.Elapsed.TotalSeconds);
    }
    Console.WriteLine($"{encoding,-12} {name,-26} {kept / 1024.0 / 1024,7:0.0} MB {loadMs,5:0} ms {tokens,11:N0} {chars / best / 1e6,10:0.0}");
    GC.KeepAlive(keep);
}
