using System.Collections.Frozen;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Byok;

/// <summary>Resolves a host name: the real DNS in the app, a table in tests (names like <c>localtest.me</c> do not resolve offline).</summary>
public interface IHostResolver
{
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct);
}

public sealed class DnsHostResolver : IHostResolver
{
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct) => Dns.GetHostAddressesAsync(host, ct);
}

/// <summary>
/// The SSRF guard for user-supplied base URLs (BYOK custom endpoints). A URL is refused unless it is https (http only in
/// Development), has no user info, query or fragment, and its host is neither a refused name (<c>localhost</c>,
/// <c>*.localhost</c>, <c>metadata.google.internal</c>…) nor an address of a refused range, nor a name that resolves to
/// one (every resolved address is checked). <see cref="Uri"/> turns decimal, octal and hex IPv4 spellings
/// (<c>2130706433</c>, <c>0x7f.1</c>) into dotted form before the check. The check runs when the URL is saved, and again
/// on every connection through <see cref="CreateHandler"/>'s <see cref="SocketsHttpHandler.ConnectCallback"/>, which
/// resolves the host itself and connects only to addresses it accepted: a name that resolved to a public address at save
/// time and to 127.0.0.1 later (DNS rebinding) is refused at connect time. Redirects are not followed and no proxy is
/// used (a proxy would connect on our behalf, past the check). <see cref="ByokOptions.AllowedHosts"/> lists exact
/// <c>host:port</c> pairs exempt from the address rules, for tests and private deployments.
/// </summary>
public sealed class OutboundAddressGuard
{
    private static readonly FrozenSet<string> RefusedNames = FrozenSet.ToFrozenSet(
        ["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata", "metadata.google.internal", "metadata.goog",
         "instance-data", "instance-data.ec2.internal"], StringComparer.OrdinalIgnoreCase);

    private readonly IHostResolver _resolver;
    private readonly bool _allowHttp;
    private readonly FrozenSet<string> _allowed;

    public OutboundAddressGuard(IHostResolver resolver, IOptions<ByokOptions> options, IHostEnvironment environment)
    {
        _resolver = resolver;
        _allowHttp = environment.IsDevelopment();
        _allowed = options.Value.AllowedHosts.Split([',', ' ', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(static e => e.ToLowerInvariant()).ToFrozenSet(StringComparer.Ordinal);
    }

    /// <summary>Checks a base URL as the user typed it: the normalised URL, or why it is refused (a sentence for the page).</summary>
    public async Task<(Uri? Url, string? Error)> CheckUrlAsync(string? text, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(text)) return (null, "Enter the endpoint's base URL, e.g. https://api.example.com/v1.");
        if (text.Length > 500) return (null, "The base URL must be at most 500 characters.");
        if (!Uri.TryCreate(text.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
            return (null, "The base URL must be an absolute https:// URL.");
        var allowed = IsAllowListed(uri.IdnHost, uri.Port);
        if (uri.Scheme == "http" && !_allowHttp && !allowed) return (null, "The base URL must use https.");
        if (uri.UserInfo.Length > 0) return (null, "The base URL must not contain a user name or password (user@host).");
        if (uri.Query.Length > 0 || uri.Fragment.Length > 0) return (null, "The base URL must not have a query (?…) or fragment (#…).");
        if (allowed) return (uri, null);
        var error = await CheckHostAsync(uri.IdnHost, uri.HostNameType, ct);
        return error is null ? (uri, null) : (null, error);
    }

    /// <summary>Why the host is refused, or null: an IP literal in a refused range, a refused name, or a name resolving to a refused address.</summary>
    private async Task<string?> CheckHostAsync(string host, UriHostNameType type, CancellationToken ct)
    {
        if (type is UriHostNameType.IPv4 or UriHostNameType.IPv6)
            return IPAddress.TryParse(host, out var literal) && !IsRefused(literal) ? null : Private(host);
        if (IsRefusedName(host)) return Private(host);
        IPAddress[] addresses;
        try
        {
            addresses = await _resolver.ResolveAsync(host, ct);
        }
        catch (SocketException)
        {
            return $"The host {host} could not be resolved.";
        }
        if (addresses.Length == 0) return $"The host {host} could not be resolved.";
        foreach (var address in addresses)
            if (IsRefused(address)) return Private(host);
        return null;
    }

    private static string Private(string host) =>
        $"The host {host} is a private, loopback, link-local or otherwise internal address, which AiGate does not call for users.";

    public static bool IsRefusedName(string host)
    {
        host = host.TrimEnd('.');
        return RefusedNames.Contains(host) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
            || host.EndsWith(".internal", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".local", StringComparison.OrdinalIgnoreCase)
            || !host.Contains('.');   // a bare name resolves through the machine's search domains: inside our network
    }

    private bool IsAllowListed(string host, int port) => _allowed.Count > 0 && _allowed.Contains($"{host.ToLowerInvariant()}:{port}");

    /// <summary>
    /// True for every address a user's URL must not reach: IPv4 this-network 0/8, private 10/8, 172.16/12, 192.168/16,
    /// CGNAT 100.64/10, loopback 127/8, link-local 169.254/16 (cloud metadata), IETF 192.0.0/24, documentation and
    /// benchmark ranges, multicast 224/4, reserved 240/4 and broadcast; IPv6 unspecified, loopback, unique-local fc00::/7,
    /// link-local fe80::/10, site-local fec0::/10, multicast ff00::/8, documentation 2001:db8::/32, and any IPv6 that
    /// embeds a refused IPv4 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16).
    /// </summary>
    public static bool IsRefused(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork) return IsRefusedV4(address.GetAddressBytes());
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return true;
        var b = address.GetAddressBytes();
        if (address.IsIPv4MappedToIPv6) return IsRefusedV4(b.AsSpan(12, 4));
        var first96Zero = true;
        for (var i = 0; i < 12; i++) first96Zero &= b[i] == 0;
        if (first96Zero) return true;   // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return IsRefusedV4(b.AsSpan(12, 4));   // NAT64 64:ff9b::/96
        if (b[0] == 0x20 && b[1] == 0x02) return IsRefusedV4(b.AsSpan(2, 4));   // 6to4 2002:a.b.c.d::/48
        if ((b[0] & 0xfe) == 0xfc) return true;   // unique local fc00::/7
        if (b[0] == 0xfe && (b[1] & 0xc0) is 0x80 or 0xc0) return true;   // link-local fe80::/10, site-local fec0::/10
        if (b[0] == 0xff) return true;   // multicast
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return true;   // documentation 2001:db8::/32
        if (b[0] == 0x01 && b[1] == 0x00 && b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0) return true;   // discard 100::/64
        return false;
    }

    private static bool IsRefusedV4(ReadOnlySpan<byte> b) => b[0] switch
    {
        0 or 10 or 127 => true,
        100 => (b[1] & 0xc0) == 64,   // CGNAT 100.64/10
        169 => b[1] == 254,
        172 => (b[1] & 0xf0) == 16,
        192 => (b[1] == 168) || (b[1] == 0 && b[2] is 0 or 2) || (b[1] == 88 && b[2] == 99),
        198 => (b[1] & 0xfe) == 18 || (b[1] == 51 && b[2] == 100),
        203 => b[1] == 0 && b[2] == 113,
        >= 224 => true,   // multicast 224/4, reserved 240/4, broadcast
        _ => false,
    };

    /// <summary>
    /// The connection pool for user endpoints: no redirects, no proxy, no cookies, and a connect step that resolves the
    /// host itself and connects only to accepted addresses, checking the address actually connected to.
    /// </summary>
    public SocketsHttpHandler CreateHandler() => new()
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        AutomaticDecompression = DecompressionMethods.None,
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        MaxResponseHeadersLength = 64,
        ConnectCallback = ConnectAsync,
    };

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var endpoint = context.DnsEndPoint;
        var allowed = IsAllowListed(endpoint.Host, endpoint.Port);
        IPAddress[] addresses;
        if (IPAddress.TryParse(endpoint.Host.Trim('[', ']'), out var literal)) addresses = [literal];
        else
        {
            if (!allowed && IsRefusedName(endpoint.Host)) throw Refused(endpoint.Host);
            addresses = await _resolver.ResolveAsync(endpoint.Host, ct);
        }
        if (addresses.Length == 0) throw new HttpRequestException(HttpRequestError.NameResolutionError, $"The host {endpoint.Host} did not resolve.");
        if (!allowed)
            foreach (var address in addresses)
                if (IsRefused(address)) throw Refused(endpoint.Host);
        Exception? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, endpoint.Port), ct);
                // The address the socket really reached, not the one we meant to reach.
                if (!allowed && (socket.RemoteEndPoint is not IPEndPoint remote || IsRefused(remote.Address))) throw Refused(endpoint.Host);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                last = ex;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw new HttpRequestException(HttpRequestError.ConnectionError, $"Could not connect to {endpoint.Host}.", last);
    }

    private static HttpRequestException Refused(string host) =>
        new(HttpRequestError.ConnectionError, $"The host {host} resolves to an internal address; AiGate does not connect to it for users.");
}
