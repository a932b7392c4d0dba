using System.Security.Cryptography;
using System.Text;
using AiGate.Web.Features.Keys;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Tests.Features.Keys;

/// <summary>A key's stored hash is HMAC-SHA256(pepper, key), whichever thread hashes it and whatever it hashed before.</summary>
public sealed class ApiKeyHasherTests
{
    private static (ApiKeyHasher Hasher, byte[] Pepper) NewHasher()
    {
        var pepper = RandomNumberGenerator.GetBytes(32);
        return (new ApiKeyHasher(Options.Create(new KeysOptions { Pepper = Convert.ToBase64String(pepper) })), pepper);
    }

    private static byte[] Expected(byte[] pepper, string key) => HMACSHA256.HashData(pepper, Encoding.ASCII.GetBytes(key));

    [Fact]
    public void Each_hash_is_the_hmac_of_the_key_alone_even_with_two_peppers_taking_turns_on_one_thread()
    {
        var (first, firstPepper) = NewHasher();
        var (second, secondPepper) = NewHasher();
        string[] keys = ["ag_test_" + new string('a', 43), "ag_test_" + new string('b', 43), "x", new string('k', 300)];

        for (var round = 0; round < 3; round++)
            foreach (var key in keys)
            {
                Assert.Equal(Expected(firstPepper, key), first.Hash(key));
                Assert.Equal(Expected(firstPepper, key), first.Hash(key));   // reused: nothing of the last hash is left in it
                Assert.Equal(Expected(secondPepper, key), second.Hash(key));
            }
    }

    [Fact]
    public async Task Threads_hashing_at_once_each_get_the_right_hash()
    {
        var (hasher, pepper) = NewHasher();
        var keys = Enumerable.Range(0, 64).Select(i => $"ag_test_{i:D43}").ToArray();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 2_000; i++)
            {
                var key = keys[(i * 7 + t) % keys.Length];
                if (!hasher.Hash(key).AsSpan().SequenceEqual(Expected(pepper, key))) return false;
            }
            return true;
        })));
        Assert.All(results, Assert.True);
    }
}
