using System.Collections.Concurrent;
using System.Security.Cryptography;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Providers;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AiGate.Web.Tests.Features.Byok;

/// <summary>
/// The app with a vault KEK and platform providers named <c>openai</c>, <c>anthropic</c> and <c>gemini</c> on fakes (so
/// users' keys of those kinds go to them), <c>gembad</c> (kind gemini, a wrong platform key), and a second fake OpenAI
/// standing in for a user's own OpenAI-compatible endpoint (allow-listed by host:port, as a private deployment would).
/// Every log line the app writes is captured, to prove no key reaches the logs.
/// </summary>
public sealed class ByokApp : AccountsApp
{
    public const string OpenAiModel = "openai/byok-chat";
    public const string EmbeddingModel = "openai/byok-embed";
    public const string AnthropicModel = "anthropic/byok-claude";
    public const string GeminiModel = "google/byok-gemini";
    public const string BadGeminiModel = "google/byok-gemini-bad";
    public const string PlatformOpenAiKey = "sk-platform-openai-0000";
    public const string PlatformAnthropicKey = "sk-ant-platform-refused-1111";
    /// <summary>Models here are priced at $1 per million tokens with an 80 % margin (1.8×), the default margin.</summary>
    public const int Margin = 18_000;

    public FakeOpenAi OpenAi { get; private set; } = null!;
    public FakeOpenAi Custom { get; private set; } = null!;
    public FakeUpstream Anthropic { get; private set; } = null!;
    public FakeUpstream Gemini { get; private set; } = null!;
    public ConcurrentQueue<string> Violations { get; } = new();
    public ConcurrentQueue<string> GeminiViolations { get; } = new();
    public ConcurrentQueue<string> Logs { get; } = new();
    private readonly string _kek = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public override async Task InitializeAsync()
    {
        OpenAi = await FakeOpenAi.StartAsync();
        Custom = await FakeOpenAi.StartAsync();
        Anthropic = await FakeAnthropic.StartAsync(Violations);
        Gemini = await FakeGemini.StartAsync(GeminiViolations);
        await base.InitializeAsync();
        await Database.InsertMeteredModelAsync(OpenAiModel, "BYOK chat", "openai", "gpt-4o-mini");
        await Database.InsertMeteredModelAsync(AnthropicModel, "BYOK Claude", "anthropic", "claude-sonnet-4-5", maxOutputTokens: 4096);
        await Database.InsertMeteredModelAsync(GeminiModel, "BYOK Gemini", "gemini", "gemini-2.5-flash");
        await Database.InsertMeteredModelAsync(BadGeminiModel, "BYOK Gemini bad platform key", "gembad", "gemini-2.5-flash");
        await Database.InsertMeteredModelAsync(EmbeddingModel, "BYOK embeddings", "openai", "text-embedding-3-small");
        await Database.ExecuteAsync($"update models set kind = 'embedding' where id = '{EmbeddingModel}'");
        await Database.ExecuteAsync($"update models set margin_basis_points = {Margin} where id like '%byok%'");
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Vault:Kek"] = _kek,
        ["Providers:openai:Kind"] = "openai", ["Providers:openai:BaseUrl"] = OpenAi.BaseUrl.ToString(), ["Providers:openai:ApiKey"] = PlatformOpenAiKey,
        ["Providers:anthropic:Kind"] = "anthropic", ["Providers:anthropic:BaseUrl"] = Anthropic.BaseUrl.ToString(),
        ["Providers:anthropic:ApiKey"] = PlatformAnthropicKey,
        ["Providers:gemini:Kind"] = "gemini", ["Providers:gemini:BaseUrl"] = Gemini.BaseUrl.ToString(), ["Providers:gemini:ApiKey"] = FakeGemini.ProviderKey,
        ["Providers:gembad:Kind"] = "gemini", ["Providers:gembad:BaseUrl"] = Gemini.BaseUrl.ToString(), ["Providers:gembad:ApiKey"] = "AIza-wrong-platform-key-2222",
        ["Byok:AllowedHosts"] = $"127.0.0.1:{Custom.BaseUrl.Port}",
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Trace).AddProvider(new CapturingLoggerProvider(Logs)));
    }

    /// <summary>Every log line written so far, messages and exceptions, as one text.</summary>
    public string AllLogs() => string.Join("\n", Logs);

    private sealed class CapturingLoggerProvider(ConcurrentQueue<string> sink) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Capturing(categoryName, sink);
        public void Dispose() { }

        private sealed class Capturing(string category, ConcurrentQueue<string> sink) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                sink.Enqueue($"{category} {logLevel}: {formatter(state, exception)} {exception}");
        }
    }
}
