using System.Security.Cryptography;
using System.Text;
using AiGate.Web.Data.Migrations;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// A fresh PostgreSQL database for one test class, cloned from a migrated template (a file copy
/// inside PostgreSQL, much faster than migrating each time). The server is the project's local
/// one: <c>AIGATE_TEST_PG</c> if the test script set it, else whatever <c>scripts/pg.sh url</c> starts.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private static readonly SemaphoreSlim TemplateGate = new(1, 1);
    private static string? _templateName;

    public string Name { get; }
    public string ConnectionString { get; }

    private TestDatabase(string name)
    {
        Name = name;
        ConnectionString = ForDatabase(name);
    }

    /// <summary>A database with every migration applied.</summary>
    public static async Task<TestDatabase> CreateMigratedAsync()
    {
        var template = await EnsureTemplateAsync();
        var name = NewName();
        await AdminAsync($"create database \"{name}\" template \"{template}\"");
        return new TestDatabase(name);
    }

    /// <summary>An empty database: no tables at all.</summary>
    public static async Task<TestDatabase> CreateEmptyAsync()
    {
        var name = NewName();
        await AdminAsync($"create database \"{name}\"");
        return new TestDatabase(name);
    }

    public NpgsqlDataSource CreateDataSource() => NpgsqlDataSource.Create(ConnectionString);

    public async Task<T?> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }

    /// <summary>
    /// A priced chat model served by two routes, provider "primary" (upstream model up-model-a) first and "backup"
    /// (up-model-b) second: what routing, failover and health tests need. Prices are micro-USD per million tokens.
    /// </summary>
    public Task InsertTwoRouteModelAsync(string id, string name, long inputMicros, long outputMicros, long cachedMicros, int marginBasisPoints) =>
        ExecuteAsync($"""
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                                cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
            values ('{id}', '{name}', 'chat', 'test', 8192, 1024, {inputMicros}, {outputMicros}, {cachedMicros}, {marginBasisPoints}, array[]::text[], array['text'], true, now());
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values
              ('{id}', 'primary', 'up-model-a', 0, 1, true), ('{id}', 'backup', 'up-model-b', 1, 1, true);
            """);

    /// <summary>
    /// A chat model at 1 micro-USD a token (input, output and cached, margin ×1, so costs are token counts),
    /// served by one route: <paramref name="provider"/>'s <paramref name="upstreamModel"/>.
    /// </summary>
    public Task InsertMeteredModelAsync(string id, string name, string provider, string upstreamModel, string ownedBy = "test",
        int contextLength = 8192, int maxOutputTokens = 1024) =>
        ExecuteAsync($"""
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                                cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
            values ('{id}', '{name}', 'chat', '{ownedBy}', {contextLength}, {maxOutputTokens}, 1000000, 1000000, 1000000, 10000, array[]::text[], array['text'], true, now());
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values ('{id}', '{provider}', '{upstreamModel}', 0, 1, true);
            """);

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await AdminAsync($"drop database if exists \"{Name}\" with (force)");
    }

    public static string ServerConnectionString { get; } = FindServer();

    private static string ForDatabase(string name) =>
        new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = name, MaxPoolSize = 20 }.ConnectionString;

    private static string NewName() => $"test_{Guid.NewGuid():N}";

    /// <summary>
    /// The template is named after the migrations it holds, so a changed migration gets a new
    /// template; an advisory lock keeps parallel test processes from building it twice.
    /// </summary>
    private static async Task<string> EnsureTemplateAsync()
    {
        if (_templateName is not null) return _templateName;
        await TemplateGate.WaitAsync();
        try
        {
            if (_templateName is not null) return _templateName;
            var fingerprint = string.Join('|', MigrationCatalog.All.Select(m => $"{m.Version}:{m.Name}:{m.Checksum}"));
            var name = "template_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(fingerprint)))[..16];

            await using var admin = new NpgsqlConnection(ForDatabase("postgres"));
            await admin.OpenAsync();
            await using (var lockCommand = new NpgsqlCommand("select pg_advisory_lock(7210001)", admin))
                await lockCommand.ExecuteNonQueryAsync();
            try
            {
                await using var exists = new NpgsqlCommand("select count(*) from pg_database where datname = $1 and datistemplate", admin);
                exists.Parameters.Add(new() { Value = name });
                if ((long)(await exists.ExecuteScalarAsync())! == 0)
                {
                    await AdminAsync($"drop database if exists \"{name}\" with (force)");
                    await AdminAsync($"create database \"{name}\"");
                    await using (var source = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(ForDatabase(name)) { Pooling = false }.ConnectionString))
                        await new SchemaMigrator(source, NullLogger<SchemaMigrator>.Instance).ApplyAsync(CancellationToken.None);
                    await AdminAsync($"alter database \"{name}\" with is_template true");
                }
            }
            finally
            {
                await using var unlock = new NpgsqlCommand("select pg_advisory_unlock(7210001)", admin);
                await unlock.ExecuteNonQueryAsync();
            }
            return _templateName = name;
        }
        finally
        {
            TemplateGate.Release();
        }
    }

    private static async Task AdminAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(
            new NpgsqlConnectionStringBuilder(ForDatabase("postgres")) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string FindServer()
    {
        if (Environment.GetEnvironmentVariable("AIGATE_TEST_PG") is { Length: > 0 } fromEnv) return fromEnv;
        var (code, stdout, stderr) = RepoPaths.RunAsync("bash", [Path.Combine(RepoPaths.Root, "scripts", "pg.sh"), "url"])
            .GetAwaiter().GetResult();
        if (code != 0) throw new InvalidOperationException($"scripts/pg.sh url failed: {stderr}");
        return stdout.Trim();
    }
}
