using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace AiGate.Web.Features.Vault;

/// <summary>A vault failure with a message fit for logs and pages: it names owners, rows and KEK fingerprints, never a secret.</summary>
public sealed class VaultException(string message) : Exception(message);

/// <summary>A secret as stored: the sealed blob and the owner's DEK version that sealed it.</summary>
public sealed record SealedSecret(byte[] Ciphertext, int KeyVersion);

/// <summary>
/// Envelope encryption (issue 14). Each owner has a DEK, stored wrapped by the KEK; each secret is sealed with
/// its owner's DEK, its associated data naming owner, purpose, row id and DEK version, so a ciphertext copied to
/// another row, purpose or owner fails to open. Unwrapped DEKs stay in memory for the life of the process: a
/// KEK rotation rewraps DEKs without changing them, so an instance that unwrapped a DEK under the old KEK keeps
/// opening secrets while another instance reads the rewrapped DEK with the new KEK.
/// </summary>
public sealed class SecretVault(NpgsqlDataSource dataSource, KeyEncryptionKeys keks, TimeProvider clock)
{
    public const string PlatformOwner = "platform";
    public static string AccountOwner(Guid userId) => $"account:{userId:D}";

    private readonly ConcurrentDictionary<(string Owner, int Version), byte[]> _deks = new();
    private readonly ConcurrentDictionary<string, int> _currentVersion = new(StringComparer.Ordinal);

    public bool IsConfigured => keks.Current is not null;
    public KeyEncryptionKeys Keks => keks;

    public async Task<SealedSecret> SealAsync(string owner, string purpose, string rowId, string secret, CancellationToken ct)
    {
        var (version, dek) = await CurrentDekAsync(owner, ct);
        return new SealedSecret(SecretBox.Seal(dek, Encoding.UTF8.GetBytes(secret), SecretData(owner, purpose, rowId, version)), version);
    }

    public async Task<string> OpenAsync(string owner, string purpose, string rowId, SealedSecret sealedSecret, CancellationToken ct)
    {
        var dek = await DekAsync(owner, sealedSecret.KeyVersion, ct);
        return OpenWith(dek, owner, purpose, rowId, sealedSecret);
    }

    /// <summary>Synchronous forms for callers that cannot await (the Data Protection key ring's encryptor); the DEK is loaded once per process.</summary>
    public SealedSecret Seal(string owner, string purpose, string rowId, byte[] plaintext)
    {
        var (version, dek) = CurrentDek(owner);
        return new SealedSecret(SecretBox.Seal(dek, plaintext, SecretData(owner, purpose, rowId, version)), version);
    }

    public byte[] Open(string owner, string purpose, string rowId, SealedSecret sealedSecret)
    {
        var dek = _deks.TryGetValue((owner, sealedSecret.KeyVersion), out var cached) ? cached : LoadDek(owner, sealedSecret.KeyVersion);
        return SecretBox.Open(dek, sealedSecret.Ciphertext, SecretData(owner, purpose, rowId, sealedSecret.KeyVersion))
            ?? throw Tampered(owner, purpose, rowId);
    }

    private static string OpenWith(byte[] dek, string owner, string purpose, string rowId, SealedSecret sealedSecret)
    {
        var plaintext = SecretBox.Open(dek, sealedSecret.Ciphertext, SecretData(owner, purpose, rowId, sealedSecret.KeyVersion))
            ?? throw Tampered(owner, purpose, rowId);
        try { return Encoding.UTF8.GetString(plaintext); }
        finally { CryptographicOperations.ZeroMemory(plaintext); }
    }

    private static VaultException Tampered(string owner, string purpose, string rowId) =>
        new($"The {purpose} secret of row {rowId} (owner {owner}) does not open: it was altered, or it was sealed for another row or owner.");

    private static byte[] SecretData(string owner, string purpose, string rowId, int version) =>
        Encoding.UTF8.GetBytes($"aigate-secret/v1\n{owner}\n{purpose}\n{rowId}\n{version}");

    private static byte[] DekData(string owner, int version) => Encoding.UTF8.GetBytes($"aigate-dek/v1\n{owner}\n{version}");

    private Kek RequireCurrent() => keks.Current
        ?? throw new VaultException("The vault has no key-encryption key: set Vault__Kek (base64 of 32 random bytes) to store or read secrets.");

    private async Task<(int Version, byte[] Dek)> CurrentDekAsync(string owner, CancellationToken ct)
    {
        if (_currentVersion.TryGetValue(owner, out var known) && _deks.TryGetValue((owner, known), out var cached)) return (known, cached);
        var kek = RequireCurrent();
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using (var insert = NewDekInsert(connection, owner, kek)) await insert.ExecuteNonQueryAsync(ct);
        await using var select = new NpgsqlCommand("select version, wrapped, kek_id from vault_deks where owner = $1 order by version desc limit 1", connection);
        select.Parameters.Add(new() { Value = owner });
        await using var reader = await select.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) throw new VaultException($"The DEK of owner {owner} could not be created.");
        return Remember(owner, reader.GetInt32(0), (byte[])reader[1], reader.GetString(2), current: true);
    }

    private (int Version, byte[] Dek) CurrentDek(string owner)
    {
        if (_currentVersion.TryGetValue(owner, out var known) && _deks.TryGetValue((owner, known), out var cached)) return (known, cached);
        var kek = RequireCurrent();
        using var connection = dataSource.OpenConnection();
        using (var insert = NewDekInsert(connection, owner, kek)) insert.ExecuteNonQuery();
        using var select = new NpgsqlCommand("select version, wrapped, kek_id from vault_deks where owner = $1 order by version desc limit 1", connection);
        select.Parameters.Add(new() { Value = owner });
        using var reader = select.ExecuteReader();
        if (!reader.Read()) throw new VaultException($"The DEK of owner {owner} could not be created.");
        return Remember(owner, reader.GetInt32(0), (byte[])reader[1], reader.GetString(2), current: true);
    }

    /// <summary>Version 1 of the owner's DEK, unless it exists (two instances may race: the first insert wins, both read it back).</summary>
    private NpgsqlCommand NewDekInsert(NpgsqlConnection connection, string owner, Kek kek)
    {
        var dek = RandomNumberGenerator.GetBytes(SecretBox.KeyBytes);
        var wrapped = SecretBox.Seal(kek.Key, dek, DekData(owner, 1));
        CryptographicOperations.ZeroMemory(dek);
        var command = new NpgsqlCommand(
            "insert into vault_deks (owner, version, wrapped, kek_id, created_at) select $1, 1, $2, $3, $4 " +
            "where not exists (select 1 from vault_deks where owner = $1) on conflict do nothing", connection);
        command.Parameters.Add(new() { Value = owner });
        command.Parameters.Add(new() { Value = wrapped });
        command.Parameters.Add(new() { Value = kek.Fingerprint });
        command.Parameters.Add(new() { Value = clock.GetUtcNow() });
        return command;
    }

    private async Task<byte[]> DekAsync(string owner, int version, CancellationToken ct)
    {
        if (_deks.TryGetValue((owner, version), out var cached)) return cached;
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var select = new NpgsqlCommand("select wrapped, kek_id from vault_deks where owner = $1 and version = $2", connection);
        select.Parameters.Add(new() { Value = owner });
        select.Parameters.Add(new() { Value = version });
        await using var reader = await select.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) throw new VaultException($"The DEK version {version} of owner {owner} does not exist.");
        return Remember(owner, version, (byte[])reader[0], reader.GetString(1), current: false).Dek;
    }

    private byte[] LoadDek(string owner, int version)
    {
        using var connection = dataSource.OpenConnection();
        using var select = new NpgsqlCommand("select wrapped, kek_id from vault_deks where owner = $1 and version = $2", connection);
        select.Parameters.Add(new() { Value = owner });
        select.Parameters.Add(new() { Value = version });
        using var reader = select.ExecuteReader();
        if (!reader.Read()) throw new VaultException($"The DEK version {version} of owner {owner} does not exist.");
        return Remember(owner, version, (byte[])reader[0], reader.GetString(1), current: false).Dek;
    }

    private (int Version, byte[] Dek) Remember(string owner, int version, byte[] wrapped, string kekId, bool current)
    {
        var dek = Unwrap(keks, owner, version, wrapped, kekId);
        dek = _deks.GetOrAdd((owner, version), dek);
        if (current) _currentVersion[owner] = version;
        return (version, dek);
    }

    /// <summary>The DEK, unwrapped with the KEK its row names; a clear error when that KEK is not configured or the row was altered.</summary>
    internal static byte[] Unwrap(KeyEncryptionKeys keks, string owner, int version, byte[] wrapped, string kekId)
    {
        if (!keks.ByFingerprint.TryGetValue(kekId, out var kek))
            throw new VaultException(keks.Current is null
                ? "The vault has no key-encryption key: set Vault__Kek (base64 of 32 random bytes) to store or read secrets."
                : $"The DEK of owner {owner} (version {version}) is wrapped by KEK {kekId}, which is neither Vault__Kek ({keks.Current.Fingerprint}) nor in Vault__PreviousKeks; add that KEK to Vault__PreviousKeks to open it.");
        return SecretBox.Open(kek.Key, wrapped, DekData(owner, version))
            ?? throw new VaultException($"The DEK of owner {owner} (version {version}) does not unwrap with KEK {kekId}: its row was altered.");
    }

    internal static byte[] Wrap(Kek kek, string owner, int version, byte[] dek) => SecretBox.Seal(kek.Key, dek, DekData(owner, version));
}
