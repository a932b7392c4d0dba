using System.Buffers;
using System.Net;
using System.Text.Json;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using Yarp.ReverseProxy.Forwarder;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// YARP's request and response transforms for one pass-through call: every credential the client sent is
/// removed and the provider's own key injected the way its API expects; the destination is the checked
/// path under the provider's base URL; the answer's body is read through a <see cref="PassthroughUsageTap"/>.
/// </summary>
internal sealed class PassthroughTransformer(Provider provider, Uri destination, PassthroughUsageTap tap) : HttpTransformer
{
    /// <summary>
    /// Request headers that never go upstream: the client's gateway key in any of the places an SDK puts a
    /// key (Azure-style OpenAI-compatible clients use <c>api-key</c>), cookies, and the client's own OpenAI organisation and project (they belong to another account).
    /// Accept-Encoding goes too: the answer must arrive uncompressed so that its usage can be read.
    /// </summary>
    private static readonly string[] Dropped =
        ["Authorization", "Proxy-Authorization", "x-api-key", "api-key", "x-goog-api-key", "Cookie", "OpenAI-Organization", "OpenAI-Project", "Accept-Encoding"];

    private static readonly string[] ProviderOnly = ["Set-Cookie", "openai-organization", "openai-project"];

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix,
        CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        foreach (var header in Dropped) proxyRequest.Headers.Remove(header);
        proxyRequest.RequestUri = destination;
        switch (provider.Kind)
        {
            case ProviderKind.Anthropic:
                proxyRequest.Headers.TryAddWithoutValidation("x-api-key", provider.ApiKey);
                // The client's anthropic-version (and anthropic-beta) pass through; Anthropic refuses a call without one.
                if (!proxyRequest.Headers.Contains("anthropic-version")) proxyRequest.Headers.TryAddWithoutValidation("anthropic-version", "2023-06-01");
                break;
            case ProviderKind.Gemini:
                proxyRequest.Headers.TryAddWithoutValidation("x-goog-api-key", provider.ApiKey);
                break;
            default:
                proxyRequest.Headers.TryAddWithoutValidation("Authorization", "Bearer " + provider.ApiKey);
                break;
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse,
        CancellationToken cancellationToken)
    {
        var headers = httpContext.Response.Headers;
        // The client's rate limits are ours (set at admission); the provider's x-ratelimit-* describe our
        // account with it, and its cookies and organisation are ours too: none of them reaches the client.
        var limits = new List<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>>(6);
        foreach (var header in headers)
            if (header.Key.StartsWith("x-ratelimit-", StringComparison.OrdinalIgnoreCase)) limits.Add(header);
        var relay = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        foreach (var name in ProviderOnly) headers.Remove(name);
        List<string>? upstreamLimits = null;
        foreach (var header in headers)
            if (header.Key.StartsWith("x-ratelimit-", StringComparison.OrdinalIgnoreCase) || header.Key.StartsWith("anthropic-ratelimit-", StringComparison.OrdinalIgnoreCase))
                (upstreamLimits ??= []).Add(header.Key);
        if (upstreamLimits is not null)
            foreach (var name in upstreamLimits) headers.Remove(name);
        foreach (var (name, value) in limits) headers[name] = value;
        headers["X-AiGate-Provider"] = provider.Name;
        if (proxyResponse is not null)
        {
            tap.Status = (int)proxyResponse.StatusCode;
            // Only a 2xx answer is billed, so only its body is read for usage.
            if (proxyResponse.IsSuccessStatusCode)
            {
                tap.EventStream = proxyResponse.Content.Headers.ContentType?.MediaType == "text/event-stream";
                proxyResponse.Content = new TapContent(proxyResponse.Content, tap);
            }
        }
        return relay;
    }

    /// <summary>The upstream body, read through the tap. Its headers were already copied to the client's response.</summary>
    private sealed class TapContent(HttpContent inner, PassthroughUsageTap tap) : HttpContent
    {
        protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
            new TapStream(await inner.ReadAsStreamAsync(cancellationToken), tap);

        protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await using var source = await CreateContentReadStreamAsync(cancellationToken);
            await source.CopyToAsync(stream, cancellationToken);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = inner.Headers.ContentLength ?? -1;
            return length >= 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    private sealed class TapStream(Stream inner, PassthroughUsageTap tap) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            tap.Observe(buffer.Span[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, count);
            tap.Observe(buffer.AsSpan(offset, read));
            return read;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            await base.DisposeAsync();
        }
    }
}

/// <summary>
/// Reads the provider's usage out of the bytes YARP relays, without holding them up: a JSON answer is
/// kept (up to the relay's cap) and parsed once it has passed; in a server-sent event stream each
/// <c>data:</c> line that carries a usage object is parsed as it passes, and the latest wins (OpenAI's
/// usage chunk comes last).
/// </summary>
public sealed class PassthroughUsageTap(ProviderKind kind, int maxJsonBytes)
{
    private const int MaxLineBytes = 1024 * 1024;
    private ArrayBufferWriter<byte>? _json;
    private ArrayBufferWriter<byte>? _line;
    private bool _overflowed;

    /// <summary>The upstream answer's status; 0 when no answer came.</summary>
    public int Status { get; set; }
    public bool EventStream { get; set; }
    /// <summary>Bytes of the answer's body relayed to the client so far.</summary>
    public long Bytes { get; private set; }
    /// <summary>Data events of an event stream relayed so far (OpenAI sends about a token per chunk).</summary>
    public long Events { get; private set; }
    private TokenUsage? _streamUsage;

    public void Observe(ReadOnlySpan<byte> chunk)
    {
        if (chunk.IsEmpty) return;
        Bytes += chunk.Length;
        if (EventStream)
        {
            ScanLines(chunk);
            return;
        }
        if (_overflowed) return;
        _json ??= new ArrayBufferWriter<byte>(Math.Min(maxJsonBytes, 16 * 1024));
        if (_json.WrittenCount + chunk.Length > maxJsonBytes)
        {
            _overflowed = true;
            _json = null;
            return;
        }
        _json.Write(chunk);
    }

    /// <summary>The usage the answer reported, or null when it reported none or was cut off before it.</summary>
    public TokenUsage? Usage()
    {
        if (EventStream) return _streamUsage;
        if (_json is null || _json.WrittenCount == 0) return null;
        try
        {
            using var document = JsonDocument.Parse(_json.WrittenMemory);
            return PassthroughRules.ReadUsage(kind, document.RootElement);
        }
        catch (JsonException)
        {
            return null;   // cut off (the client left, the upstream broke): no usage to read
        }
    }

    private void ScanLines(ReadOnlySpan<byte> chunk)
    {
        while (!chunk.IsEmpty)
        {
            var end = chunk.IndexOf((byte)'\n');
            var part = end < 0 ? chunk : chunk[..end];
            if (end < 0)
            {
                _line ??= new ArrayBufferWriter<byte>(4096);
                if (_line.WrittenCount + part.Length <= MaxLineBytes) _line.Write(part);
                return;
            }
            if (_line is { WrittenCount: > 0 })
            {
                if (_line.WrittenCount + part.Length <= MaxLineBytes) _line.Write(part);
                Line(_line.WrittenSpan);
                _line.ResetWrittenCount();
            }
            else
            {
                Line(part);
            }
            chunk = chunk[(end + 1)..];
        }
    }

    private void Line(ReadOnlySpan<byte> line)
    {
        if (!line.StartsWith("data:"u8)) return;
        Events++;
        if (!CarriesUsageObject(line)) return;
        try
        {
            var reader = new Utf8JsonReader(line[5..].TrimEnd((byte)'\r'));
            if (!JsonDocument.TryParseValue(ref reader, out var document)) return;
            using (document)
                if (PassthroughRules.ReadUsage(kind, document.RootElement) is { } usage) _streamUsage = usage;
        }
        catch (JsonException)
        {
            // a malformed event carries no usage we could believe
        }
    }

    /// <summary>Whether the line has <c>"usage": {</c> (or Gemini's <c>"usageMetadata": {</c>): OpenAI sends <c>"usage":null</c> on every other chunk, which is not parsed.</summary>
    private static bool CarriesUsageObject(ReadOnlySpan<byte> line)
    {
        var at = line.IndexOf("\"usage"u8);
        while (at >= 0)
        {
            var rest = line[(at + 6)..];
            var close = rest.IndexOf((byte)'"');
            if (close >= 0)
            {
                var after = rest[(close + 1)..].TrimStart(" \t"u8);
                if (!after.IsEmpty && after[0] == (byte)':' && after[1..].TrimStart(" \t"u8) is [(byte)'{', ..]) return true;
            }
            var next = rest.IndexOf("\"usage"u8);
            if (next < 0) return false;
            line = rest;
            at = next;
        }
        return false;
    }
}
