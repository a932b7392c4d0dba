using System.Security.Cryptography;
using System.Text;
using AiGate.Web.Features.Billing;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>
/// Stripe-Signature verification against vectors built the documented way, independently of the code under
/// test: HMAC-SHA256 keyed with the endpoint secret over "{t}.{payload}", lower-case hex, in <c>v1=</c>.
/// </summary>
public sealed class StripeSignatureTests
{
    private const string Secret = "whsec_test_5f2b9c7e1a";
    private static readonly byte[] Payload = Encoding.UTF8.GetBytes("""{"id":"evt_1","object":"event","type":"checkout.session.completed"}""");
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_760_000_000);
    private static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);

    private static string V1(long t, byte[] payload, string secret) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{t}.").Concat(payload).ToArray()));

    private static StripeSignature.Result Verify(string header, byte[]? payload = null) =>
        StripeSignature.Verify(payload ?? Payload, header, Secret, Now, Tolerance);

    [Fact]
    public void A_valid_signature_is_accepted() =>
        Assert.Equal(StripeSignature.Result.Valid, Verify($"t={Now.ToUnixTimeSeconds()},v1={V1(Now.ToUnixTimeSeconds(), Payload, Secret)}"));

    [Fact]
    public void Our_signer_produces_what_Stripe_documents() =>
        Assert.Equal($"t={Now.ToUnixTimeSeconds()},v1={V1(Now.ToUnixTimeSeconds(), Payload, Secret)}", StripeSignature.Sign(Payload, Secret, Now));

    [Fact]
    public void A_signature_made_with_another_secret_is_refused() =>
        Assert.Equal(StripeSignature.Result.NoMatch, Verify($"t={Now.ToUnixTimeSeconds()},v1={V1(Now.ToUnixTimeSeconds(), Payload, "whsec_other")}"));

    [Fact]
    public void A_stale_timestamp_is_refused_even_with_a_correct_signature()
    {
        var t = Now.ToUnixTimeSeconds() - 301;
        Assert.Equal(StripeSignature.Result.OutsideTolerance, Verify($"t={t},v1={V1(t, Payload, Secret)}"));
        var edge = Now.ToUnixTimeSeconds() - 300;
        Assert.Equal(StripeSignature.Result.Valid, Verify($"t={edge},v1={V1(edge, Payload, Secret)}"));
    }

    [Fact]
    public void A_future_timestamp_beyond_the_tolerance_is_refused()
    {
        var t = Now.ToUnixTimeSeconds() + 301;
        Assert.Equal(StripeSignature.Result.OutsideTolerance, Verify($"t={t},v1={V1(t, Payload, Secret)}"));
    }

    [Fact]
    public void A_tampered_body_is_refused()
    {
        var t = Now.ToUnixTimeSeconds();
        var tampered = Encoding.UTF8.GetBytes("""{"id":"evt_1","object":"event","type":"checkout.session.completed" }""");
        Assert.Equal(StripeSignature.Result.NoMatch, Verify($"t={t},v1={V1(t, Payload, Secret)}", tampered));
    }

    [Fact]
    public void A_timestamp_changed_after_signing_is_refused()
    {
        var t = Now.ToUnixTimeSeconds();
        Assert.Equal(StripeSignature.Result.NoMatch, Verify($"t={t - 1},v1={V1(t, Payload, Secret)}"));
    }

    [Fact]
    public void Any_of_several_v1_signatures_may_match_as_during_secret_rotation()
    {
        var t = Now.ToUnixTimeSeconds();
        Assert.Equal(StripeSignature.Result.Valid,
            Verify($"t={t},v1={V1(t, Payload, "whsec_old")},v1={V1(t, Payload, Secret)},v0={V1(t, Payload, "whsec_v0")}"));
        Assert.Equal(StripeSignature.Result.NoMatch, Verify($"t={t},v1={V1(t, Payload, "whsec_old")},v1={V1(t, Payload, "whsec_older")}"));
    }

    [Fact]
    public void A_v0_signature_alone_is_not_enough()
    {
        var t = Now.ToUnixTimeSeconds();
        Assert.Equal(StripeSignature.Result.Malformed, Verify($"t={t},v0={V1(t, Payload, Secret)}"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("v1=abcdef")]
    [InlineData("t=,v1=")]
    [InlineData("t=notanumber,v1=00")]
    [InlineData("t=1760000000")]
    [InlineData("t=1760000000,v1=zz")]
    [InlineData("t=1760000000,v1=0123")]
    public void Malformed_headers_are_refused(string header) => Assert.Equal(StripeSignature.Result.Malformed, Verify(header));
}
