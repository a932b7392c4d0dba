using System.Collections.Frozen;
using System.Security.Cryptography;
using AiGate.Web.Infrastructure;

namespace AiGate.Web.Features.Vault;

/// <summary>One KEK and its fingerprint (first 8 hex digits of its SHA-256), the only way a KEK is ever named.</summary>
public sealed class Kek
{
    internal Kek(byte[] key)
    {
        Key = key;
        Fingerprint = Convert.ToHexStringLower(SHA256.HashData(key))[..8];
    }

    internal byte[] Key { get; }
    public string Fingerprint { get; }
    public override string ToString() => Fingerprint;
}

/// <summary>The KEKs of this process: the current one (new wraps) and the previous ones (unwrap only).</summary>
public sealed class KeyEncryptionKeys
{
    public KeyEncryptionKeys(Kek? current, IReadOnlyList<Kek> previous)
    {
        Current = current;
        Previous = previous;
        var all = new Dictionary<string, Kek>(StringComparer.Ordinal);
        foreach (var kek in previous) all[kek.Fingerprint] = kek;
        if (current is not null) all[current.Fingerprint] = current;
        ByFingerprint = all.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public Kek? Current { get; }
    public IReadOnlyList<Kek> Previous { get; }
    public FrozenDictionary<string, Kek> ByFingerprint { get; }

    /// <summary>Parses <see cref="VaultOptions"/>; a malformed KEK stops the start with a message that names the setting, never its value.</summary>
    public static KeyEncryptionKeys Parse(VaultOptions options)
    {
        var current = string.IsNullOrWhiteSpace(options.Kek) ? null : new Kek(Decode(options.Kek, "Vault__Kek"));
        var previous = new List<Kek>();
        var parts = (options.PreviousKeks ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        for (var i = 0; i < parts.Length; i++) previous.Add(new Kek(Decode(parts[i], $"Vault__PreviousKeks (entry {i + 1})")));
        if (current is null && previous.Count > 0)
            throw new StartupConfigurationException("Vault__PreviousKeks is set but Vault__Kek is not: set the new KEK in Vault__Kek and the old ones in Vault__PreviousKeks.");
        return new KeyEncryptionKeys(current, previous);
    }

    private static byte[] Decode(string value, string setting)
    {
        var buffer = new byte[value.Length];
        if (!Convert.TryFromBase64String(value.Trim(), buffer, out var written))
            throw new StartupConfigurationException($"{setting} is not valid base64; it must be the base64 of exactly 32 random bytes (head -c 32 /dev/urandom | base64).");
        if (written != SecretBox.KeyBytes)
            throw new StartupConfigurationException($"{setting} decodes to {written} bytes; it must be the base64 of exactly 32 random bytes (head -c 32 /dev/urandom | base64).");
        return buffer[..written];
    }
}
