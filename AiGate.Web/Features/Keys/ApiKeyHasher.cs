using System.Security.Cryptography;
using System.Text;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Keys;

/// <summary>
/// Keys are stored as HMAC-SHA256(pepper, key) (RELIABILITY K3). Keys carry 256 random bits, so one
/// fast keyed hash is enough; the pepper, kept outside the database, makes a leaked table useless
/// for checking guesses offline.
/// </summary>
public sealed class ApiKeyHasher
{
    private readonly byte[] _pepper;

    public ApiKeyHasher(IOptions<KeysOptions> options) =>
        _pepper = Convert.FromBase64String(options.Value.Pepper ?? throw new StartupConfigurationException("Keys:Pepper is not set."));

    public byte[] Hash(ReadOnlySpan<char> key)
    {
        Span<byte> ascii = stackalloc byte[key.Length];
        Encoding.ASCII.GetBytes(key, ascii);
        return HMACSHA256.HashData(_pepper, ascii);
    }
}
