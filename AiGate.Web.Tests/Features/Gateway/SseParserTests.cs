using System.Buffers;
using System.Text;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Providers;
using AiGate.Web.Tests.Features.Providers;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// The parser one open stream keeps: it holds rented buffers only while an event is half read, so 10,000 streams
/// waiting for their next event hold none (issue 16), and an event split across reads still arrives whole.
/// </summary>
public sealed class SseParserTests
{
    [Fact]
    public void Holds_no_buffer_between_events_and_one_while_an_event_is_half_read()
    {
        using var parser = new SseParser();
        var translator = new Recorder();
        var writer = new SseWriter(new ArrayBufferWriter<byte>());

        Assert.Equal("", Feed(parser, translator, writer, "event: delta\ndata: {\"a\":1}\n\n"));
        Assert.Equal(["delta {\"a\":1}"], translator.Events);
        Assert.False(parser.HoldsBuffers);

        // A multi-line event cut after its first data line: the part read is kept, and nothing else.
        Assert.Equal("data: {\"b\"", Feed(parser, translator, writer, "event: delta\ndata: {\"b\":\ndata: {\"b\""));
        Assert.True(parser.HoldsBuffers);
        Assert.Single(translator.Events);

        Assert.Equal("", Feed(parser, translator, writer, "data: {\"b\":2}\n\n"));
        Assert.Equal(["delta {\"a\":1}", "delta {\"b\":\n{\"b\":2}"], translator.Events);
        Assert.False(parser.HoldsBuffers);
    }

    [Fact]
    public void An_event_longer_than_the_first_buffer_arrives_whole()
    {
        using var parser = new SseParser();
        var translator = new Recorder();
        var writer = new SseWriter(new ArrayBufferWriter<byte>());
        var data = new string('x', 5_000);

        Feed(parser, translator, writer, $"data: {data}\n\n");

        Assert.Equal([" " + data], translator.Events);
        Assert.False(parser.HoldsBuffers);
    }

    /// <summary>Parses <paramref name="text"/> as one read; returns what is left for the next read (a partial line).</summary>
    private static string Feed(SseParser parser, ChatStreamTranslator translator, SseWriter writer, string text)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(text));
        parser.Parse(ref buffer, translator, writer);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private sealed class Recorder() : ChatStreamTranslator(TranslatorHarness.Call("""{"model":"m","messages":[]}"""))
    {
        public List<string> Events { get; } = [];

        public override void OnEvent(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data, SseWriter output) =>
            Events.Add($"{Encoding.UTF8.GetString(eventName)} {Encoding.UTF8.GetString(data)}");
    }
}
