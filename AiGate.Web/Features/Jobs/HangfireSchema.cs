using Hangfire.PostgreSql;
using Npgsql;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Hangfire's tables, in their own schema (<see cref="JobsExtensions.SchemaName"/>), installed by migration 0012
/// with Hangfire.PostgreSql's own installer, so they always match the pinned package and no copy of them lives
/// here. The app's storage has <c>PrepareSchemaIfNecessary</c> off: only <c>migrate</c> changes the schema.
/// </summary>
public static class HangfireSchema
{
    /// <summary>
    /// The installer runs each of its versioned scripts in a transaction of its own, so it gets a connection of its
    /// own rather than the migration's. It is idempotent (each script is skipped once its version is recorded in
    /// <c>hangfire.schema</c>): if the migration's own transaction fails after it, the next <c>migrate</c> finds the
    /// schema in place and only records the migration.
    /// </summary>
    public static async Task InstallAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken ct)
    {
        _ = transaction;
        await using var own = (NpgsqlConnection)((ICloneable)connection).Clone();
        if (own.State != System.Data.ConnectionState.Open) await own.OpenAsync(ct);
        PostgreSqlObjectsInstaller.Install(own, JobsExtensions.SchemaName);
    }
}
