namespace AiGate.Web.Features.Vault;

/// <summary>
/// <c>Vault__Kek</c>: the key-encryption key, base64 of exactly 32 random bytes
/// (<c>head -c 32 /dev/urandom | base64</c>). <c>Vault__PreviousKeks</c>: comma-separated earlier KEKs, set only
/// during a rotation so DEKs still wrapped by one of them open until <c>rotate-kek</c> has rewrapped them.
/// Both are secrets: environment only, never a committed file.
/// </summary>
public sealed class VaultOptions
{
    public const string Section = "Vault";
    public string? Kek { get; set; }
    public string? PreviousKeks { get; set; }
}
