using AiGate.Web.Infrastructure;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>The hot path's small caches (provider URLs, rate-limit texts): a value is made once per key, up to the bound.</summary>
public sealed class BoundedCacheTests
{
    [Fact]
    public void A_value_is_made_once_per_key_and_past_the_bound_made_for_each_caller()
    {
        var cache = new BoundedCache<string, string>(2, StringComparer.Ordinal);
        var made = new List<string>();
        string Get(string key) => cache.GetOrAdd(key, made, static (k, m) => { m.Add(k); return k.ToUpperInvariant(); });

        Assert.Equal("A", Get("a"));
        Assert.Equal("A", Get("a"));
        Assert.Equal("B", Get("b"));
        Assert.Equal("C", Get("c"));
        Assert.Equal("C", Get("c"));
        Assert.Equal(["a", "b", "c", "c"], made);
    }
}
