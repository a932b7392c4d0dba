using System.Security.Cryptography;

namespace AiGate.Web.Features.Vault;

/// <summary>
/// AES-256-GCM with a fresh random 96-bit nonce per seal. A sealed blob is <c>nonce (12) ‖ ciphertext ‖ tag (16)</c>;
/// the associated data is not stored but must be given again to open, which is what binds a ciphertext to the
/// row, owner and purpose it was written for. Used for both layers: secrets under a DEK, DEKs under a KEK.
/// </summary>
public static class SecretBox
{
    public const int KeyBytes = 32;
    public const int NonceBytes = 12;   // AesGcm.NonceByteSizes.MaxSize; random 96-bit nonces are safe far past our volumes (2^32 seals per key)
    public const int TagBytes = 16;
    public const int Overhead = NonceBytes + TagBytes;

    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var blob = new byte[Overhead + plaintext.Length];
        var nonce = blob.AsSpan(0, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagBytes);
        aes.Encrypt(nonce, plaintext, blob.AsSpan(NonceBytes, plaintext.Length), blob.AsSpan(NonceBytes + plaintext.Length, TagBytes), associatedData);
        return blob;
    }

    /// <summary>The plaintext, or null when the blob was altered, is too short, or was sealed with another key or associated data.</summary>
    public static byte[]? Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> blob, ReadOnlySpan<byte> associatedData)
    {
        if (blob.Length < Overhead) return null;
        var length = blob.Length - Overhead;
        var plaintext = new byte[length];
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(blob[..NonceBytes], blob.Slice(NonceBytes, length), blob.Slice(NonceBytes + length, TagBytes), plaintext, associatedData);
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(plaintext);
            return null;
        }
    }
}
