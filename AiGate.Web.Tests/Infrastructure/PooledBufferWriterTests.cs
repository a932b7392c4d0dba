using System.Text;
using AiGate.Web.Infrastructure;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>The buffer a whole answer is built in before it is sent with its Content-Length.</summary>
public sealed class PooledBufferWriterTests
{
    [Fact]
    public void It_grows_past_its_first_array_and_keeps_every_byte_in_order()
    {
        using var writer = new PooledBufferWriter(initialCapacity: 16);
        var expected = new StringBuilder();
        for (var i = 0; i < 2_000; i++)
        {
            var piece = Encoding.UTF8.GetBytes($"{i},");
            piece.CopyTo(writer.GetSpan(piece.Length));
            writer.Advance(piece.Length);
            expected.Append(i).Append(',');
        }
        Assert.Equal(expected.ToString(), Encoding.UTF8.GetString(writer.WrittenSpan));
    }

    [Fact]
    public void Advancing_past_what_was_asked_for_is_refused()
    {
        using var writer = new PooledBufferWriter(initialCapacity: 16);
        var room = writer.GetMemory(8).Length;
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Advance(room + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Advance(-1));
        Assert.Equal(0, writer.WrittenSpan.Length);
    }
}
