using Npgsql;

namespace AiGate.Web.Data.Migrations;

/// <summary>
/// Applies pending migrations. Two instances (or a release step and a developer) may run it at
/// the same moment: a PostgreSQL advisory lock makes one wait for the other, and the second then
/// finds nothing left to do. Each migration runs in its own transaction together with its row in
/// <c>schema_migrations</c>, so a failure leaves the schema at the last complete version.
/// </summary>
public sealed partial class SchemaMigrator(NpgsqlDataSource dataSource, ILogger<SchemaMigrator> logger)
{
    /// <summary>Arbitrary, fixed: the advisory lock key that serialises migrations ("AiGateMg").</summary>
    private const long LockKey = 0x4169_4761_7465_4D67;

    private readonly IReadOnlyList<SchemaMigration> _migrations = MigrationCatalog.All;

    public async Task<IReadOnlyList<SchemaMigration>> ApplyAsync(CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await ExecuteAsync(connection, $"select pg_advisory_lock({LockKey})", ct);
        try
        {
            await ExecuteAsync(connection, """
                create table if not exists schema_migrations (
                    version integer primary key,
                    name text not null,
                    checksum text,
                    applied_at timestamptz not null default now())
                """, ct);
            var applied = await ReadAppliedAsync(connection, ct);
            VerifyHistory(applied);

            var done = new List<SchemaMigration>();
            foreach (var migration in _migrations.Where(m => !applied.ContainsKey(m.Version)))
            {
                await using var transaction = await connection.BeginTransactionAsync(ct);
                await migration.ApplyAsync(connection, transaction, ct);
                await using (var record = new NpgsqlCommand(
                    "insert into schema_migrations (version, name, checksum) values ($1, $2, $3)", connection, transaction))
                {
                    record.Parameters.Add(new() { Value = migration.Version });
                    record.Parameters.Add(new() { Value = migration.Name });
                    record.Parameters.Add(new() { Value = (object?)migration.Checksum ?? DBNull.Value });
                    await record.ExecuteNonQueryAsync(ct);
                }
                await transaction.CommitAsync(ct);
                LogApplied(migration.Version, migration.Name);
                done.Add(migration);
            }
            return done;
        }
        finally
        {
            await ExecuteAsync(connection, $"select pg_advisory_unlock({LockKey})", CancellationToken.None);
        }
    }

    /// <summary>Migrations not yet applied; all of them when the database was never migrated.</summary>
    public async Task<IReadOnlyList<SchemaMigration>> GetPendingAsync(CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var exists = new NpgsqlCommand("select to_regclass('schema_migrations') is not null", connection);
        if (await exists.ExecuteScalarAsync(ct) is not true) return _migrations;
        var applied = await ReadAppliedAsync(connection, ct);
        return [.. _migrations.Where(m => !applied.ContainsKey(m.Version))];
    }

    private void VerifyHistory(IReadOnlyDictionary<int, string?> applied)
    {
        var known = _migrations.ToDictionary(m => m.Version);
        foreach (var (version, checksum) in applied)
        {
            if (!known.TryGetValue(version, out var migration))
                throw new InvalidOperationException(
                    $"The database has migration {version}, which this build does not know: it was migrated by a newer version of AiGate.");
            if (migration.Checksum is not null && checksum is not null && migration.Checksum != checksum)
                throw new InvalidOperationException(
                    $"Migration {version:0000}_{migration.Name} was changed after it was applied. Add a new migration instead.");
        }
    }

    private static async Task<Dictionary<int, string?>> ReadAppliedAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var applied = new Dictionary<int, string?>();
        await using var command = new NpgsqlCommand("select version, checksum from schema_migrations", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            applied[reader.GetInt32(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
        return applied;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied migration {Version} {Name}")]
    private partial void LogApplied(int version, string name);
}
