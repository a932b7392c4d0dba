using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace AiGate.Web.Data.Migrations;

/// <summary>
/// One step of the schema's history. Most steps are a versioned SQL file embedded in this
/// assembly (<c>Data/Migrations/0001_name.sql</c>); a few run code, such as installing Hangfire's schema
/// with the installer that ships inside Hangfire.PostgreSql itself.
/// </summary>
public sealed record SchemaMigration(
    int Version,
    string Name,
    string? Checksum,
    Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task> ApplyAsync)
{
    /// <summary>A migration from the embedded file <c>{version:0000}_{name}.sql</c>.</summary>
    public static SchemaMigration Sql(int version, string name)
    {
        var sql = ReadEmbeddedSql(version, name);
        return new SchemaMigration(version, name, Sha256(sql), async (connection, transaction, ct) =>
        {
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            await command.ExecuteNonQueryAsync(ct);
        });
    }

    /// <summary>A migration that runs code. It has no checksum: its code is reviewed like any other.</summary>
    public static SchemaMigration Code(int version, string name,
        Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task> apply) =>
        new(version, name, null, apply);

    private static string ReadEmbeddedSql(int version, string name)
    {
        var resource = $"AiGate.Web.Data.Migrations.{version:0000}_{name}.sql";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Migration {resource} is not embedded in the assembly.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static string Sha256(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\n"))));
}
