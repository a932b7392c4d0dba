using System.Text.RegularExpressions;
using AiGate.Web.Features.Keys;

namespace AiGate.Web.Tests.Features.Keys;

public sealed partial class ApiKeyFormatTests
{
    [GeneratedRegex("^ag_(live|test)_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$")]
    private static partial Regex KeyShape();

    [Fact]
    public void Generated_keys_match_the_format_and_their_checksum_and_never_collide()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 100_000; i++)
        {
            var key = ApiKeyFormat.Generate(live: i % 2 == 0);
            Assert.Matches(KeyShape(), key);
            Assert.True(ApiKeyFormat.IsWellFormed(key), key);
            Assert.True(seen.Add(key));
        }
    }

    [Fact]
    public void Any_single_character_change_is_caught_by_the_checksum()
    {
        var key = ApiKeyFormat.Generate();
        const string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        var rejected = 0;
        var variants = 0;
        for (var i = 8; i < key.Length; i++)
        {
            foreach (var c in alphabet)
            {
                if (c == key[i]) continue;
                variants++;
                var changed = string.Concat(key.AsSpan(0, i), c.ToString(), key.AsSpan(i + 1));
                if (!ApiKeyFormat.IsWellFormed(changed)) rejected++;
            }
        }
        Assert.Equal(variants, rejected);
    }

    [Theory]
    [InlineData("")]
    [InlineData("sk-proj-abc")]
    [InlineData("ag_live_")]
    [InlineData("ag_prod_0000000000000000000000000000000000000000000000000")]
    [InlineData("ag_live_00000000000000000000000000000000000000000000000-0")]
    public void Malformed_keys_are_rejected(string key) => Assert.False(ApiKeyFormat.IsWellFormed(key));

    [Fact]
    public void Crc32_matches_the_standard_check_value() =>
        Assert.Equal(0xCBF43926u, ApiKeyFormat.Crc32("123456789"u8));

    [Fact]
    public void Description_shows_prefix_and_last_four_only()
    {
        var key = ApiKeyFormat.Generate(live: false);
        var (prefix, last4) = ApiKeyFormat.Describe(key);
        Assert.Equal(key[..12], prefix);
        Assert.StartsWith("ag_test_", prefix, StringComparison.Ordinal);
        Assert.Equal(key[^4..], last4);
    }
}
