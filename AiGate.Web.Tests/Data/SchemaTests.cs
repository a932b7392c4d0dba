using AiGate.Web.Data;
using AiGate.Web.Data.Migrations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace AiGate.Web.Tests.Data;

/// <summary>The hand-written migrations and the EF model must describe the same schema.</summary>
public sealed class SchemaTests
{
    [Fact]
    public async Task Migrated_schema_equals_the_schema_the_EF_model_expects()
    {
        await using var migrated = await TestDatabase.CreateEmptyAsync();
        await using (var source = migrated.CreateDataSource())
            await new SchemaMigrator(source, NullLogger<SchemaMigrator>.Instance).ApplyAsync(CancellationToken.None);

        await using var expected = await TestDatabase.CreateEmptyAsync();
        await using (var db = new AppDbContext(new DbContextOptionsBuilder<AppDbContext>().UseNpgsql(expected.ConnectionString).Options))
            await db.Database.ExecuteSqlRawAsync(db.Database.GenerateCreateScript());

        var actualSchema = await DescribeAsync(migrated);
        var expectedSchema = await DescribeAsync(expected);

        Assert.NotEmpty(expectedSchema);
        Assert.Contains(expectedSchema, line => line.StartsWith("column users.email ", StringComparison.Ordinal));
        Assert.Equal(expectedSchema, actualSchema);
    }

    [Fact]
    public async Task Migrating_twice_changes_nothing_the_second_time()
    {
        await using var database = await TestDatabase.CreateEmptyAsync();
        await using var source = database.CreateDataSource();
        var migrator = new SchemaMigrator(source, NullLogger<SchemaMigrator>.Instance);

        var first = await migrator.ApplyAsync(CancellationToken.None);
        var second = await migrator.ApplyAsync(CancellationToken.None);

        Assert.Equal(MigrationCatalog.All.Select(m => m.Version), first.Select(m => m.Version));
        Assert.Empty(second);
        Assert.Empty(await migrator.GetPendingAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_migration_edited_after_it_was_applied_stops_the_migrator()
    {
        await using var database = await TestDatabase.CreateMigratedAsync();
        await database.ExecuteAsync("update schema_migrations set checksum = 'edited' where version = 1");
        await using var source = database.CreateDataSource();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            new SchemaMigrator(source, NullLogger<SchemaMigrator>.Instance).ApplyAsync(CancellationToken.None));
        Assert.Contains("0001_identity was changed after it was applied", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Quartz_tables_and_Hangfire_schema_are_created_by_migrations()
    {
        await using var database = await TestDatabase.CreateMigratedAsync();
        var quartzTables = await database.ScalarAsync<long>(
            "select count(*) from information_schema.tables where table_schema = 'public' and table_name like 'qrtz\\_%'");
        Assert.True(quartzTables >= 11, $"expected Quartz's tables, found {quartzTables}");
        Assert.Equal("quartz_tables", await database.ScalarAsync<string>("select name from schema_migrations where version = 2"));

        Assert.Equal("hangfire_schema", await database.ScalarAsync<string>("select name from schema_migrations where version = 12"));
        foreach (var table in (string[])["job", "state", "jobqueue", "hash", "set", "lock", "server", "counter", "list", "jobparameter"])
            Assert.True(await database.ScalarAsync<bool>($"select to_regclass('hangfire.{table}') is not null"), $"hangfire.{table} is missing");
        // The installer recorded the newest version of its scripts, so Hangfire (whose own installer is off) finds its schema current.
        Assert.True(await database.ScalarAsync<int>("select max(version) from hangfire.schema") >= 23);
    }

    [Fact]
    public async Task A_database_at_migration_10_with_Quartz_data_upgrades_and_keeps_the_Quartz_tables()
    {
        // Today's deployments: migrated to 0010 by the Quartz build, whose migration 0002 ran code and so has no checksum.
        await using var database = await TestDatabase.CreateEmptyAsync();
        await using (var connection = new NpgsqlConnection(database.ConnectionString))
        {
            await connection.OpenAsync();
            await using (var create = new NpgsqlCommand(
                "create table schema_migrations (version integer primary key, name text not null, checksum text, applied_at timestamptz not null default now())", connection))
                await create.ExecuteNonQueryAsync();
            foreach (var migration in MigrationCatalog.All.Where(m => m.Version <= 10))
            {
                await using var transaction = await connection.BeginTransactionAsync();
                await migration.ApplyAsync(connection, transaction, CancellationToken.None);
                await using var record = new NpgsqlCommand("insert into schema_migrations (version, name, checksum) values ($1, $2, $3)", connection, transaction);
                record.Parameters.Add(new() { Value = migration.Version });
                record.Parameters.Add(new() { Value = migration.Name });
                record.Parameters.Add(new() { Value = migration.Version == 2 ? DBNull.Value : migration.Checksum! });
                await record.ExecuteNonQueryAsync();
                await transaction.CommitAsync();
            }
        }
        Assert.False(await database.ScalarAsync<bool>("select to_regclass('hangfire.job') is not null"));
        await database.ExecuteAsync("""
            insert into qrtz_job_details (sched_name, job_name, job_group, description, job_class_name, is_durable, is_nonconcurrent, is_update_data, requests_recovery, job_data)
            values ('AiGate', 'job-runs-prune', 'housekeeping', null, 'AiGate.Web.Features.Jobs.JobRunsPruneJob, AiGate.Web', true, true, false, true, null);
            insert into qrtz_scheduler_state (sched_name, instance_name, last_checkin_time, checkin_interval) values ('AiGate', 'old-instance', 0, 10000);
            insert into job_runs (job_name, job_group, trigger_name, fire_instance_id, instance_id, started_at, duration_ms, outcome)
            values ('job-runs-prune', 'housekeeping', 'job-runs-prune-daily', 'f1', 'old-instance', now() - interval '1 day', 5, 'Succeeded');
            """);

        await using (var source = database.CreateDataSource())
        {
            var migrator = new SchemaMigrator(source, NullLogger<SchemaMigrator>.Instance);
            var applied = await migrator.ApplyAsync(CancellationToken.None);
            Assert.Equal(MigrationCatalog.All.Where(m => m.Version > 10).Select(m => m.Version), applied.Select(m => m.Version));
            Assert.Empty(await migrator.GetPendingAsync(CancellationToken.None));
        }

        Assert.True(await database.ScalarAsync<bool>("select to_regclass('hangfire.job') is not null"));
        // Additive: the Quartz tables and their rows stay (a later release drops them), and the run history is kept.
        Assert.Equal(1, await database.ScalarAsync<long>("select count(*) from qrtz_job_details where job_name = 'job-runs-prune'"));
        Assert.Equal(1, await database.ScalarAsync<long>("select count(*) from qrtz_scheduler_state"));
        Assert.Equal(1, await database.ScalarAsync<long>("select count(*) from job_runs where fire_instance_id = 'f1'"));
        Assert.Null(await database.ScalarAsync<string>("select checksum from schema_migrations where version = 2"));
    }

    [Theory]
    [InlineData("UserName", "user_name")]
    [InlineData("NormalizedEmail", "normalized_email")]
    [InlineData("AspNetUsers", "asp_net_users")]
    [InlineData("HTMLBody", "html_body")]
    [InlineData("PK_users", "pk_users")]
    [InlineData("IX_job_runs_StartedAt", "ix_job_runs_started_at")]
    [InlineData("Value2Text", "value2_text")]
    public void Names_become_snake_case(string name, string expected) => Assert.Equal(expected, AppDbContext.ToSnakeCase(name));

    /// <summary>
    /// One line per table, column (type, nullability, default, identity), index and constraint, from
    /// PostgreSQL's catalog, schema <c>public</c> only (Hangfire's tables live in schema <c>hangfire</c>, installed by
    /// its own installer). Bookkeeping tables that are not part of the EF model are left out, and so are Quartz's.
    /// </summary>
    private static async Task<List<string>> DescribeAsync(TestDatabase database)
    {
        const string notOurs = "(t.relname = 'schema_migrations' or t.relname like 'qrtz\\_%')";
        var lines = new List<string>();
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        async Task ReadAsync(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) lines.Add(reader.GetString(0));
        }

        await ReadAsync($"""
            select 'column ' || t.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                   || case when a.attnotnull then ' not null' else ' null' end
                   || case when a.attidentity <> '' then ' identity:' || a.attidentity::text else '' end
                   || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
            from pg_attribute a
            join pg_class t on t.oid = a.attrelid and t.relkind = 'r'
            join pg_namespace n on n.oid = t.relnamespace and n.nspname = 'public'
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where a.attnum > 0 and not a.attisdropped and not {notOurs}
            """);
        await ReadAsync($"""
            select 'index ' || i.relname || ': ' || pg_get_indexdef(i.oid)
            from pg_index x
            join pg_class i on i.oid = x.indexrelid
            join pg_class t on t.oid = x.indrelid
            join pg_namespace n on n.oid = t.relnamespace and n.nspname = 'public'
            where not {notOurs}
            """);
        await ReadAsync($"""
            select 'constraint ' || t.relname || '.' || c.conname || ': ' || pg_get_constraintdef(c.oid)
            from pg_constraint c
            join pg_class t on t.oid = c.conrelid
            join pg_namespace n on n.oid = t.relnamespace and n.nspname = 'public'
            where not {notOurs}
            """);
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }
}
