using AiGate.Web.Infrastructure.Cli;

namespace AiGate.Web.Data.Migrations;

public static class MigrateVerb
{
    /// <summary><c>migrate</c>: apply pending migrations (Fly's release step runs it once per deploy).</summary>
    public static readonly CliVerb Verb = new("migrate", "apply pending database migrations", [], static async context =>
    {
        var migrator = context.Services.GetRequiredService<SchemaMigrator>();
        var applied = await migrator.ApplyAsync(context.CancellationToken);
        await context.Out.WriteLineAsync(applied.Count == 0
            ? "database is up to date"
            : $"applied {applied.Count} migration(s): {string.Join(", ", applied.Select(m => $"{m.Version:0000}_{m.Name}"))}");
        return 0;
    });
}
