using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// Stripe's webhook signature scheme (https://docs.stripe.com/webhooks#verify-manually): the
/// <c>Stripe-Signature</c> header is <c>t=&lt;unix seconds&gt;,v1=&lt;hex&gt;[,v1=…][,v0=…]</c>; each <c>v1</c> is
/// HMAC-SHA256 over <c>"{t}.{raw body}"</c> keyed with the endpoint secret. A request is genuine when any
/// <c>v1</c> matches (compared in constant time) and <c>t</c> is within the tolerance of now, either way.
/// </summary>
public static class StripeSignature
{
    public enum Result { Valid, Malformed, NoMatch, OutsideTolerance }

    public static Result Verify(ReadOnlySpan<byte> payload, string? header, string secret, DateTimeOffset now, TimeSpan tolerance)
    {
        if (string.IsNullOrWhiteSpace(header) || string.IsNullOrEmpty(secret)) return Result.Malformed;
        long? timestamp = null;
        var signatures = new List<byte[]>();
        foreach (var part in header.Split(','))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0) continue;
            var name = part[..eq].Trim();
            var value = part[(eq + 1)..].Trim();
            if (name == "t" && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var t)) timestamp = t;
            else if (name == "v1" && value.Length == 64 && TryHex(value, out var bytes)) signatures.Add(bytes);
        }
        if (timestamp is null || signatures.Count == 0) return Result.Malformed;

        var expected = Compute(payload, timestamp.Value, secret);
        // Check every signature (no early exit) so timing says nothing about which one matched.
        var match = false;
        foreach (var signature in signatures) match |= CryptographicOperations.FixedTimeEquals(signature, expected);
        if (!match) return Result.NoMatch;

        var age = now.ToUnixTimeSeconds() - timestamp.Value;
        return Math.Abs(age) > tolerance.TotalSeconds ? Result.OutsideTolerance : Result.Valid;
    }

    /// <summary>A header as Stripe would send it (the local TEST checkout and tests sign their events with it).</summary>
    public static string Sign(ReadOnlySpan<byte> payload, string secret, DateTimeOffset at)
    {
        var t = at.ToUnixTimeSeconds();
        return string.Create(CultureInfo.InvariantCulture, $"t={t},v1={Convert.ToHexStringLower(Compute(payload, t, secret))}");
    }

    public static byte[] Compute(ReadOnlySpan<byte> payload, long timestamp, string secret)
    {
        var prefix = Encoding.UTF8.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        var signed = new byte[prefix.Length + payload.Length];
        prefix.CopyTo(signed, 0);
        payload.CopyTo(signed.AsSpan(prefix.Length));
        return HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed);
    }

    private static bool TryHex(string value, out byte[] bytes)
    {
        try
        {
            bytes = Convert.FromHexString(value);
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }
}
