using System.Globalization;
using AiGate.Web.Infrastructure;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>Request and completion ids: RFC 9562 version-7 GUIDs, unique across threads, ordered by time, with the time in them.</summary>
public sealed class PrefixedIdTests
{
    [Fact]
    public void An_id_is_the_prefix_and_a_version_7_guid_that_carries_the_time()
    {
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var id = PrefixedId.New("req_");
        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        Assert.StartsWith("req_", id);
        Assert.Equal(4 + 32, id.Length);
        var guid = Guid.ParseExact(id[4..], "N");
        Assert.Equal(7, guid.Version);
        Assert.Equal(0b10, guid.Variant >> 2);   // RFC 9562's variant: the top two bits 10
        var milliseconds = long.Parse(id[4..16], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        Assert.InRange(milliseconds, before, after);
    }

    [Fact]
    public async Task Ids_made_on_many_threads_at_once_are_all_different()
    {
        const int perThread = 50_000;
        var made = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
        {
            var ids = new string[perThread];
            for (var i = 0; i < perThread; i++) ids[i] = PrefixedId.New("chatcmpl-");
            return ids;
        })));

        var all = made.SelectMany(ids => ids).ToArray();
        Assert.Equal(all.Length, all.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Ids_from_different_milliseconds_sort_in_the_order_they_were_made()
    {
        var first = PrefixedId.New("req_");
        Thread.Sleep(3);
        var second = PrefixedId.New("req_");

        Assert.True(string.CompareOrdinal(first, second) < 0, $"{first} sorts after {second}");
        // One process's ids share their last 42 bits (its instance bits) and differ in the counter.
        Assert.Equal(first[^10..], second[^10..]);
    }
}
