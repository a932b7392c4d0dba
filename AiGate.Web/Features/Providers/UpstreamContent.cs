using System.Net;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// The body of a request to a provider, with a flag raised once it was written whole to the connection: from then on the
/// upstream has the request and may be generating, so the attempt is not retried (<see cref="Gateway.UpstreamRouter"/>).
/// A JSON body is made as one (<see cref="Json"/>: the bytes and their Content-Type, nothing parsed); any other content
/// (a multipart upload) is wrapped by the router before it is sent.
/// </summary>
public sealed class UpstreamContent : HttpContent
{
    private readonly byte[]? _bytes;
    private readonly HttpContent? _inner;

    private UpstreamContent(byte[]? bytes, HttpContent? inner)
    {
        _bytes = bytes;
        _inner = inner;
    }

    public bool Sent { get; private set; }

    /// <summary>A JSON body. The Content-Type is stored as written, not parsed into typed values and back (issue 16).</summary>
    public static UpstreamContent Json(byte[] body)
    {
        var content = new UpstreamContent(body, null);
        content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        return content;
    }

    /// <summary>The request's content as an <see cref="UpstreamContent"/>: itself when it is one, else wrapped (its headers copied as set).</summary>
    public static UpstreamContent Of(HttpRequestMessage request)
    {
        if (request.Content is UpstreamContent own) return own;
        var wrapped = new UpstreamContent(null, request.Content ?? new ByteArrayContent([]));
        foreach (var (name, values) in wrapped._inner!.Headers.NonValidated)
        {
            if (values.Count == 1) wrapped.Headers.TryAddWithoutValidation(name, values.ToString());
            else wrapped.Headers.TryAddWithoutValidation(name, values);
        }
        request.Content = wrapped;
        return wrapped;
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        if (_bytes is not null) await stream.WriteAsync(_bytes, cancellationToken);
        else await _inner!.CopyToAsync(stream, cancellationToken);
        await stream.FlushAsync(cancellationToken);
        Sent = true;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = _bytes?.Length ?? _inner!.Headers.ContentLength ?? -1;
        return length >= 0;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner?.Dispose();
        base.Dispose(disposing);
    }
}
