using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;

namespace AiGate.Web.Features.Vault;

/// <summary>
/// Encrypts the Data Protection key ring at rest (issue 14): each new key's descriptor (which holds the master key
/// that signs cookies and antiforgery tokens) is sealed with the platform DEK before it reaches
/// <c>data_protection_keys</c>. The element's own random id is the associated data's row id, so a ciphertext
/// pasted into another element does not open. Keys written in plain text before the vault was configured carry no
/// decryptor and are still read as they are.
/// </summary>
public sealed class VaultXmlEncryptor(SecretVault vault) : IXmlEncryptor
{
    public const string Purpose = "data-protection-key";
    internal static readonly XName Element = "vaultEncryptedKey";

    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        var id = Guid.NewGuid().ToString("D");
        var sealedSecret = vault.Seal(SecretVault.PlatformOwner, Purpose, id,
            System.Text.Encoding.UTF8.GetBytes(plaintextElement.ToString(SaveOptions.DisableFormatting)));
        var element = new XElement(Element,
            new XAttribute("id", id),
            new XAttribute("keyVersion", sealedSecret.KeyVersion),
            new XComment(" sealed with the AiGate vault's platform DEK (AES-256-GCM) "),
            Convert.ToBase64String(sealedSecret.Ciphertext));
        return new EncryptedXmlInfo(element, typeof(VaultXmlDecryptor));
    }
}

/// <summary>Opens what <see cref="VaultXmlEncryptor"/> sealed. Data Protection creates it by type, with the app's services.</summary>
public sealed class VaultXmlDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement)
    {
        var vault = services.GetRequiredService<SecretVault>();
        var id = (string?)encryptedElement.Attribute("id") ?? throw new VaultException("A vault-encrypted key ring element has no id.");
        var version = (int?)encryptedElement.Attribute("keyVersion") ?? throw new VaultException("A vault-encrypted key ring element has no keyVersion.");
        var plaintext = vault.Open(SecretVault.PlatformOwner, VaultXmlEncryptor.Purpose, id,
            new SealedSecret(Convert.FromBase64String(encryptedElement.Value.Trim()), version));
        try
        {
            return XElement.Parse(System.Text.Encoding.UTF8.GetString(plaintext));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}
