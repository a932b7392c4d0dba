using Npgsql;
using Quartz;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Quartz's tables. The DDL is the PostgreSQL script embedded in the Quartz assembly we run
/// (the one its job store would run with SchemaProvisioning), so the tables always match the
/// pinned Quartz version and no copy of it lives in this repo. Every statement in it is
/// <c>create ... if not exists</c>.
/// </summary>
public static class QuartzSchema
{
    public const string TablePrefix = "qrtz_";
    private const string Resource = "Quartz.Impl.AdoJobStore.Schema.create_postgres.sql";

    public static async Task CreateTablesAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken ct)
    {
        foreach (var statement in ReadStatements())
        {
            await using var command = new NpgsqlCommand(statement, connection, transaction);
            await command.ExecuteNonQueryAsync(ct);
        }
    }

    private static IEnumerable<string> ReadStatements()
    {
        using var stream = typeof(IJob).Assembly.GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"{Resource} is missing from the Quartz assembly.");
        var script = new StreamReader(stream).ReadToEnd()
            .Replace("{0}", TablePrefix, StringComparison.Ordinal)
            .Replace("{1}", TablePrefix, StringComparison.Ordinal);
        // The script separates statements with a line reading exactly "--;;".
        return script.ReplaceLineEndings("\n").Split("\n--;;\n")
            .Select(s => s.Trim())
            .Where(s => s.Split('\n').Any(line => line.Length > 0 && !line.StartsWith("--", StringComparison.Ordinal)))
            .ToList();
    }
}
