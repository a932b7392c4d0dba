using System.Diagnostics;
using System.Security.Cryptography;
using AiGate.Web.Tests.Features.Billing;
using AiGate.Web.Tests.Features.Email;

namespace AiGate.E2E.Infrastructure;

/// <summary>
/// The app as it is deployed: the published app as a process in <b>Production</b>, migrated by the <c>migrate</c> verb
/// first (fly.toml's release step), with every Production secret set, reached by the browser only through a
/// <see cref="TlsEdge"/> (HTTPS in, <c>X-Forwarded-Proto: https</c> to the app, as Fly's proxy does), and with its
/// third parties on other origins: a fake Stripe (API and hosted Checkout page on its own port) and a fake Resend.
/// </summary>
public sealed class ProductionStack : IAsyncLifetime
{
    public const string WebhookSecret = "whsec_e2e_production_0123456789abcdef";

    public FakeStripe Stripe { get; private set; } = null!;
    public FakeResend Resend { get; private set; } = null!;
    public TlsEdge Edge { get; private set; } = null!;
    public RunningApp App { get; private set; } = null!;

    /// <summary>Where the browser goes: the edge, never the app's own port.</summary>
    public Uri BaseUrl => Edge.BaseUrl;

    public async Task InitializeAsync()
    {
        Stripe = await FakeStripe.StartAsync(servePages: true);
        Resend = await FakeResend.StartAsync();
        Edge = await TlsEdge.StartAsync();
        // Stripe delivers webhooks to the public address, through the edge.
        Stripe.WebhookUrl = new Uri(Edge.BaseUrl, "/webhooks/stripe");
        Stripe.WebhookSecret = WebhookSecret;
        Stripe.WebhookClient = TlsEdge.Client();
        App = new ProductionApp(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_SYSTEM_BUFFERS_SHAREDARRAYPOOL_MAXARRAYSPERPARTITION"] = "1024",   // as the Dockerfile sets it
            ["Stripe__SecretKey"] = FakeStripe.SecretKey,
            ["Stripe__WebhookSecret"] = WebhookSecret,
            ["Stripe__ApiBase"] = Stripe.BaseUrl.ToString(),
            ["Resend__ApiKey"] = FakeResend.ApiKey,
            ["Resend__ApiBase"] = Resend.BaseUrl.ToString(),
            ["Email__From"] = "AiGate <noreply@example.com>",
            ["Email__BaseUrl"] = Edge.BaseUrl.GetLeftPart(UriPartial.Authority),
            ["Keys__Pepper"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
        });
        await App.InitializeAsync();
        Edge.Upstream = App.BaseUrl;
    }

    public async Task DisposeAsync()
    {
        await App.DisposeAsync();
        await Edge.DisposeAsync();
        Stripe.WebhookClient.Dispose();
        await Stripe.DisposeAsync();
        await Resend.DisposeAsync();
    }

    /// <summary>
    /// The published app, as the Dockerfile runs it: only the publish output has the precompressed static assets that
    /// Production serves to a browser asking for gzip or br (the build output answers those with empty bodies).
    /// </summary>
    private sealed class ProductionApp(IReadOnlyDictionary<string, string> environment) : RunningApp
    {
        private readonly string _published = Path.Combine(Path.GetTempPath(), $"aigate-e2e-published-{Guid.NewGuid():N}");

        protected override IReadOnlyDictionary<string, string> ExtraEnvironment => environment;

        protected override (string Dll, string ContentRoot) Build => (Path.Combine(_published, "AiGate.Web.dll"), _published);

        protected override async Task BeforeStartAsync()
        {
            var publish = new ProcessStartInfo("dotnet");
            foreach (var arg in new[] { "publish", Path.Combine(Paths.Root, "AiGate.Web", "AiGate.Web.csproj"), "-c", Paths.Configuration, "--no-build",
                "-o", _published, "--nologo", "-v", "quiet" })
                publish.ArgumentList.Add(arg);
            var result = await ChildProcess.RunAsync(publish, TimeSpan.FromMinutes(3));
            if (result.ExitCode != 0) throw new InvalidOperationException($"dotnet publish: {result}");
            await RunVerbForOutputAsync("migrate");   // fly.toml's release step
        }

        public override async Task DisposeAsync()
        {
            await base.DisposeAsync();
            if (Directory.Exists(_published)) Directory.Delete(_published, recursive: true);
        }
    }
}
