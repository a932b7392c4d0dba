using AiGate.Web.Infrastructure.Cli;

namespace AiGate.Web.Features.Models;

/// <summary>
/// <c>export-models</c> prints the catalogue (models and routes) as JSON; <c>import-models --file F</c> prints what
/// importing F would change and, with <c>--apply</c>, applies it in one transaction (audited, actor <c>cli</c>).
/// Without <c>--apply</c> nothing changes, so an operator reads the diff first.
/// </summary>
public static class CatalogVerbs
{
    public static readonly CliVerb Export = new("export-models", "print the model catalogue (models and routes) as JSON", [], static async context =>
    {
        var file = await context.Services.GetRequiredService<CatalogAdmin>().ExportAsync(context.CancellationToken);
        await context.Out.WriteLineAsync(file.ToJson());
        return 0;
    });

    public static readonly CliVerb Import = new("import-models", "show what a catalogue JSON file changes; apply it in one transaction with --apply",
        [
            new CliOption("file", "the JSON file (as export-models prints it); - reads standard input", Required: true),
            new CliOption("apply", "apply the changes (without it, only the diff is printed)", IsFlag: true),
        ],
        static async context =>
        {
            var path = context.Get("file");
            string text;
            try
            {
                text = path == "-" ? await Console.In.ReadToEndAsync(context.CancellationToken) : await File.ReadAllTextAsync(path, context.CancellationToken);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new CliUsageException($"cannot read {path}: {ex.Message}");
            }
            var admin = context.Services.GetRequiredService<CatalogAdmin>();
            IReadOnlyList<CatalogDiffLine> diff;
            try
            {
                var file = CatalogFile.Parse(text);
                diff = context.Flag("apply") ? await admin.ImportAsync(file, context.CancellationToken) : await admin.DiffAsync(file, context.CancellationToken);
            }
            catch (CatalogValidationException ex)
            {
                foreach (var error in ex.Errors) await context.Out.WriteLineAsync("invalid: " + error.Message);
                await context.Out.WriteLineAsync("nothing was changed");
                return 1;
            }
            foreach (var line in diff.Where(l => l.Action != "unchanged"))
                await context.Out.WriteLineAsync($"{line.Action} {line.Target}{(line.Detail.Length > 0 ? ": " + line.Detail : "")}");
            var changes = diff.Count(l => l.Action != "unchanged");
            await context.Out.WriteLineAsync(context.Flag("apply")
                ? $"applied {changes} change(s)"
                : $"{changes} change(s); nothing applied (run again with --apply)");
            return 0;
        });
}
