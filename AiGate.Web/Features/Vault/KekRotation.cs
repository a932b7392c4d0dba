using System.Globalization;
using Npgsql;

namespace AiGate.Web.Features.Vault;

/// <summary>
/// <c>rotate-kek</c> and <c>vault-status</c>. A rotation rewraps each DEK under <c>Vault__Kek</c>: the DEK itself
/// does not change, so no secret is re-sealed and every instance keeps the DEKs it holds in memory. Each batch is
/// its own transaction and takes its rows with <c>for update skip locked</c>, so the verb can stop anywhere, be run
/// again (it continues with what is left), or run twice at once.
/// </summary>
public static class KekRotation
{
    public static async Task<int> RotateAsync(NpgsqlDataSource dataSource, KeyEncryptionKeys keks, int batchSize, TextWriter output, TimeProvider clock, CancellationToken ct)
    {
        var current = keks.Current ?? throw new VaultException("Vault__Kek is not set: set the new KEK there and the old ones in Vault__PreviousKeks, then run rotate-kek.");
        var total = 0;
        while (true)
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            var batch = new List<(string Owner, int Version, byte[] Wrapped, string KekId)>(batchSize);
            await using (var select = new NpgsqlCommand(
                "select owner, version, wrapped, kek_id from vault_deks where kek_id <> $1 order by owner, version limit $2 for update skip locked",
                connection, transaction))
            {
                select.Parameters.Add(new() { Value = current.Fingerprint });
                select.Parameters.Add(new() { Value = batchSize });
                await using var reader = await select.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct)) batch.Add((reader.GetString(0), reader.GetInt32(1), (byte[])reader[2], reader.GetString(3)));
            }
            if (batch.Count == 0) break;
            foreach (var (owner, version, wrapped, kekId) in batch)
            {
                var dek = SecretVault.Unwrap(keks, owner, version, wrapped, kekId);
                await using var update = new NpgsqlCommand(
                    "update vault_deks set wrapped = $3, kek_id = $4, rewrapped_at = $5 where owner = $1 and version = $2", connection, transaction);
                update.Parameters.Add(new() { Value = owner });
                update.Parameters.Add(new() { Value = version });
                update.Parameters.Add(new() { Value = SecretVault.Wrap(current, owner, version, dek) });
                update.Parameters.Add(new() { Value = current.Fingerprint });
                update.Parameters.Add(new() { Value = clock.GetUtcNow() });
                await update.ExecuteNonQueryAsync(ct);
                System.Security.Cryptography.CryptographicOperations.ZeroMemory(dek);
            }
            await transaction.CommitAsync(ct);
            total += batch.Count;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"rewrapped {total} DEK(s) under KEK {current.Fingerprint} so far"));
        }
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"done: {total} DEK(s) rewrapped; every DEK is on KEK {current.Fingerprint}"));
        return total;
    }

    /// <summary>How many DEKs each KEK wraps, by fingerprint, with which of this process's KEKs it is.</summary>
    public static async Task<IReadOnlyList<(string KekId, long Deks, string Role)>> StatusAsync(NpgsqlDataSource dataSource, KeyEncryptionKeys keks, CancellationToken ct)
    {
        var rows = new List<(string, long, string)>();
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var select = new NpgsqlCommand("select kek_id, count(*) from vault_deks group by kek_id order by kek_id", connection);
        await using var reader = await select.ExecuteReaderAsync(ct);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync(ct))
        {
            var id = reader.GetString(0);
            seen.Add(id);
            rows.Add((id, reader.GetInt64(1), Role(keks, id)));
        }
        if (keks.Current is { } current && seen.Add(current.Fingerprint)) rows.Add((current.Fingerprint, 0, Role(keks, current.Fingerprint)));
        foreach (var previous in keks.Previous)
            if (seen.Add(previous.Fingerprint)) rows.Add((previous.Fingerprint, 0, Role(keks, previous.Fingerprint)));
        return rows;
    }

    private static string Role(KeyEncryptionKeys keks, string id)
    {
        if (keks.Current?.Fingerprint == id) return "current (Vault__Kek)";
        for (var i = 0; i < keks.Previous.Count; i++)
            if (keks.Previous[i].Fingerprint == id) return $"previous (Vault__PreviousKeks entry {i + 1})";
        return "UNKNOWN: not configured here, its DEKs cannot be opened";
    }
}
