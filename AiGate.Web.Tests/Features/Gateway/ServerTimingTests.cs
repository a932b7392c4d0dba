using System.Globalization;
using AiGate.Web.Features.Gateway;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>The Server-Timing durations, written by hand on the hot path, read as the "0.##" format wrote them.</summary>
public sealed class ServerTimingTests
{
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.001)]
    [InlineData(0.01)]
    [InlineData(0.1)]
    [InlineData(0.126)]
    [InlineData(1.0)]
    [InlineData(1.5)]
    [InlineData(12.34)]
    [InlineData(12.3456)]
    [InlineData(99.999)]
    [InlineData(999.994)]
    [InlineData(123456.78)]
    public void Milliseconds_are_written_as_the_custom_format_writes_them(double milliseconds)
    {
        Span<char> text = stackalloc char[64];
        var written = GatewayResponses.Milliseconds(text, milliseconds);
        Assert.Equal(milliseconds.ToString("0.##", CultureInfo.InvariantCulture), new string(text[..written]));
    }

    [Fact]
    public void A_negative_or_absurd_duration_is_written_as_a_number()
    {
        Span<char> text = stackalloc char[64];
        Assert.Equal("0", new string(text[..GatewayResponses.Milliseconds(text, -3)]));
        Assert.Equal("1000000000000", new string(text[..GatewayResponses.Milliseconds(text, double.PositiveInfinity)]));
    }
}
