using System.Net;
using AiGate.Web.Features.Byok;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Tests.Features.Byok;

/// <summary>The SSRF guard of users' custom base URLs (issue 14): the corpus of refused forms, DNS names, rebinding at connect time, redirects.</summary>
public sealed class OutboundAddressGuardTests
{
    /// <summary>A resolver from a table, as the real DNS would answer those names (names like localtest.me do not resolve offline).</summary>
    private sealed class TableResolver : IHostResolver
    {
        public Dictionary<string, IPAddress[]> Names { get; } = new(StringComparer.OrdinalIgnoreCase)
        {
            ["api.example.com"] = [IPAddress.Parse("93.184.215.14")],
            ["localtest.me"] = [IPAddress.Parse("127.0.0.1")],
            ["internal.example.com"] = [IPAddress.Parse("10.1.2.3")],
            ["mixed.example.com"] = [IPAddress.Parse("93.184.215.14"), IPAddress.Parse("192.168.1.10")],
            ["metadata.example.com"] = [IPAddress.Parse("169.254.169.254")],
            ["v6private.example.com"] = [IPAddress.Parse("fd00::1")],
            ["mapped.example.com"] = [IPAddress.Parse("::ffff:10.0.0.1")],
        };

        public Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct) =>
            Task.FromResult(Names.TryGetValue(host, out var a) ? a : throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.HostNotFound));
    }

    private static OutboundAddressGuard Guard(TableResolver? resolver = null, string allowed = "", string environment = "Production") =>
        new(resolver ?? new TableResolver(), Options.Create(new ByokOptions { AllowedHosts = allowed }), new HostingEnvironment { EnvironmentName = environment });

    public static TheoryData<string> Refused =>
    [
        "https://127.0.0.1/v1", "https://127.1.2.3/v1", "https://[::1]/v1", "https://[::]/v1", "https://0.0.0.0/v1", "https://0.1.2.3/",
        "https://169.254.169.254/latest/meta-data", "https://10.0.0.1/v1", "https://172.16.0.1/", "https://172.31.255.255/", "https://192.168.1.1/",
        "https://100.64.0.1/", "https://100.127.255.254/", "https://224.0.0.1/", "https://239.255.255.250/", "https://255.255.255.255/", "https://240.0.0.1/",
        "https://198.18.0.1/", "https://192.0.0.8/",
        "https://[fc00::1]/", "https://[fd12:3456::1]/", "https://[fe80::1]/", "https://[febf::1]/", "https://[ff02::1]/",
        "https://[::ffff:127.0.0.1]/", "https://[::ffff:169.254.169.254]/", "https://[::ffff:10.0.0.1]/", "https://[::ffff:7f00:1]/",
        "https://[::127.0.0.1]/", "https://[64:ff9b::10.0.0.1]/", "https://[2002:a00:1::]/",
        // Decimal, hex, octal and short IPv4 spellings of loopback and metadata.
        "https://2130706433/", "https://0x7f000001/", "https://0x7f.1/", "https://0177.0.0.1/", "https://127.1/", "https://2852039166/",
        // Names.
        "https://localhost/v1", "https://LOCALHOST:8443/", "https://api.localhost/", "https://metadata.google.internal/computeMetadata/v1",
        "https://localhost./", "https://intranet/",
        // Names resolving to refused addresses (every resolved address counts).
        "https://localtest.me/", "https://internal.example.com/v1", "https://mixed.example.com/v1", "https://metadata.example.com/",
        "https://v6private.example.com/", "https://mapped.example.com/",
        // User info, schemes, shapes.
        "https://evil@127.0.0.1/", "https://user:pass@api.example.com/v1", "http://api.example.com/v1", "ftp://api.example.com/", "file:///etc/passwd",
        "gopher://api.example.com/", "https://api.example.com/v1?x=1", "https://api.example.com/v1#frag", "not a url", "", "https://unresolvable.example.com/",
    ];

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Refuses_internal_addresses_names_and_shapes(string url)
    {
        var (checkedUrl, error) = await Guard().CheckUrlAsync(url, CancellationToken.None);
        Assert.Null(checkedUrl);
        Assert.False(string.IsNullOrWhiteSpace(error));
    }

    [Theory]
    [InlineData("https://api.example.com/v1")]
    [InlineData("https://93.184.215.14/v1")]
    [InlineData("https://[2606:4700::1111]/v1")]
    [InlineData("https://api.example.com:8443/openai/v1")]
    public async Task Accepts_public_https_endpoints(string url)
    {
        var (checkedUrl, error) = await Guard().CheckUrlAsync(url, CancellationToken.None);
        Assert.Null(error);
        Assert.NotNull(checkedUrl);
    }

    [Fact]
    public async Task Http_is_accepted_only_in_development_and_an_allow_listed_host_port_only_on_that_port()
    {
        Assert.NotNull((await Guard(environment: "Development").CheckUrlAsync("http://api.example.com/v1", CancellationToken.None)).Url);
        Assert.Null((await Guard(environment: "Development").CheckUrlAsync("http://127.0.0.1/v1", CancellationToken.None)).Url);
        var allowed = Guard(allowed: "127.0.0.1:5005, other:1");
        Assert.NotNull((await allowed.CheckUrlAsync("http://127.0.0.1:5005/v1", CancellationToken.None)).Url);
        Assert.Null((await allowed.CheckUrlAsync("http://127.0.0.1:5006/v1", CancellationToken.None)).Url);
        Assert.Null((await allowed.CheckUrlAsync("http://evil@127.0.0.1:5005/v1", CancellationToken.None)).Url);
    }

    [Fact]
    public async Task A_name_that_rebinds_to_loopback_after_the_check_is_refused_at_connect_time()
    {
        await using var target = await FakeUpstream.StartAsync(app => app.MapGet("/v1/models", () => "secret internal data"));
        var resolver = new TableResolver();
        resolver.Names["rebind.example.com"] = [IPAddress.Parse("93.184.215.14")];
        var guard = Guard(resolver, environment: "Development");
        var (url, error) = await guard.CheckUrlAsync($"http://rebind.example.com:{target.BaseUrl.Port}/v1", CancellationToken.None);
        Assert.Null(error);

        // The name now answers with loopback (DNS rebinding): the connection is refused, the internal server never reached.
        resolver.Names["rebind.example.com"] = [IPAddress.Loopback];
        using var client = new HttpClient(guard.CreateHandler());
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri(url!, "v1/models")));
        Assert.Contains("internal address", refused.Message);
        Assert.Empty(target.Requests);

        // An IP literal that slipped past (e.g. a row written before the rules) is refused at connect time too.
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri(target.BaseUrl, "v1/models")));
        Assert.Empty(target.Requests);
    }

    [Fact]
    public async Task Redirects_are_not_followed()
    {
        await using var inner = await FakeUpstream.StartAsync(app => app.MapGet("/latest/meta-data", () => "instance credentials"));
        await using var outer = await FakeUpstream.StartAsync(app =>
            app.MapGet("/v1/models", (HttpContext c) => Results.Redirect(new Uri(inner.BaseUrl, "latest/meta-data").ToString(), permanent: false, preserveMethod: true)));
        var guard = Guard(allowed: $"127.0.0.1:{outer.BaseUrl.Port}");
        using var client = new HttpClient(guard.CreateHandler());

        using var response = await client.GetAsync(new Uri(outer.BaseUrl, "v1/models"));

        Assert.Equal(HttpStatusCode.TemporaryRedirect, response.StatusCode);
        Assert.Single(outer.Requests);
        Assert.Empty(inner.Requests);
    }
}
