using AiGate.Web.Infrastructure.Cli;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Features.Gateway;

public static class GatewayExtensions
{
    public static IHostApplicationBuilder AddGateway(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<GatewayOptions>().BindConfiguration(GatewayOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<ModelsOptions>().BindConfiguration(ModelsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<RateLimits>();
        builder.Services.AddSingleton<OpenStreams>();
        builder.Services.AddSingleton<AccountConcurrency>();
        builder.Services.AddSingleton<GatewayAdmission>();
        builder.Services.AddSingleton<ModelCatalog>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ModelCatalog>());
        builder.Services.AddSingleton<ProviderRegistry>();
        builder.Services.AddSingleton<UpstreamRouter>();
        builder.Services.AddSingleton<ApiKeyAuthenticator>();
        builder.Services.AddSingleton<StreamRelay>();
        builder.Services.AddSingleton<ChatCompletionsEndpoint>();
        builder.Services.AddSingleton<MessagesEndpoint>();
        builder.Services.AddSingleton<GenerationPipeline>();
        builder.Services.AddSingleton<ResponsesEndpoint>();
        builder.Services.AddSingleton<CompletionsEndpoint>();
        builder.Services.AddSingleton<EmbeddingsEndpoint>();
        builder.Services.AddSingleton<MediaPipeline>();
        builder.Services.AddSingleton<ImagesEndpoint>();
        builder.Services.AddSingleton<ModerationsEndpoint>();
        builder.Services.AddSingleton<SpeechEndpoint>();
        builder.Services.AddSingleton<TranscriptionsEndpoint>();
        builder.Services.AddSingleton<ModelsEndpoints>();
        builder.Services.AddHttpForwarder();
        builder.Services.AddSingleton<PassthroughEndpoint>();
        builder.Services.AddSingleton<RealtimeEndpoint>();
        builder.Services.AddScoped<CatalogAdmin>();
        builder.Services.AddSingleton<RouteTester>();
        builder.Services.AddCliVerb(CatalogVerbs.Export);
        builder.Services.AddCliVerb(CatalogVerbs.Import);
        return builder;
    }

    /// <summary>
    /// WebSocket upgrades for <c>/api/v1/realtime</c> only (before routing's endpoints run); every other path keeps
    /// the plain HTTP pipeline. Keep-alive pings are the relay's business (it passes the provider's frames through).
    /// </summary>
    public static IApplicationBuilder UseGatewayWebSockets(this IApplicationBuilder app) =>
        app.UseWhen(static c => c.Request.Path.StartsWithSegments(RealtimeEndpoint.Path),
            static ws => ws.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) }));

    /// <summary>
    /// <c>/api/v1</c>: plain request delegates (no MVC, no antiforgery, no session), bearer keys only.
    /// Any other path under it answers 404 in OpenAI's envelope, never an HTML page.
    /// </summary>
    public static IEndpointRouteBuilder MapGateway(this IEndpointRouteBuilder app)
    {
        var services = app.ServiceProvider;
        _ = services.GetRequiredService<ProviderRegistry>();   // bad provider configuration fails at start, not on the first call
        _ = Task.Run(TokenCounter.Warm);   // the tokenizers' data loads at start (≈ 0.3 s), not on the first call's hot path
        _ = Task.Run(services.GetRequiredService<ApiKeyCache>().WarmAsync);   // and the key lookup's query compiles
        var chat = services.GetRequiredService<ChatCompletionsEndpoint>();
        var messages = services.GetRequiredService<MessagesEndpoint>();
        var responses = services.GetRequiredService<ResponsesEndpoint>();
        var completions = services.GetRequiredService<CompletionsEndpoint>();
        var embeddings = services.GetRequiredService<EmbeddingsEndpoint>();
        var models = services.GetRequiredService<ModelsEndpoints>();
        var passthrough = services.GetRequiredService<PassthroughEndpoint>();
        var realtime = services.GetRequiredService<RealtimeEndpoint>();

        var api = app.MapGroup("/api/v1");
        api.MapPost("/chat/completions", chat.HandleAsync);
        api.MapPost("/messages", messages.HandleAsync);
        api.MapPost("/messages/count_tokens", messages.CountTokensAsync);
        api.MapPost("/responses", responses.HandleAsync);
        api.MapMethods("/responses/{id}/{**rest}", ["GET", "POST", "DELETE"], ResponsesEndpoint.NotStoredAsync);
        api.MapMethods("/responses/{id}", ["GET", "DELETE"], ResponsesEndpoint.NotStoredAsync);
        api.MapPost("/completions", completions.HandleAsync);
        api.MapPost("/embeddings", embeddings.HandleAsync);
        api.MapPost("/images/generations", services.GetRequiredService<ImagesEndpoint>().HandleAsync);
        api.MapPost("/moderations", services.GetRequiredService<ModerationsEndpoint>().HandleAsync);
        api.MapPost("/audio/speech", services.GetRequiredService<SpeechEndpoint>().HandleAsync);
        var transcriptions = services.GetRequiredService<TranscriptionsEndpoint>();
        api.MapPost("/audio/transcriptions", transcriptions.TranscribeAsync);
        api.MapPost("/audio/translations", transcriptions.TranslateAsync);
        api.MapGet("/models", models.ListAsync);
        api.MapGet("/models/{**id}", models.GetAsync);
        api.Map("/passthrough/{**path}", passthrough.HandleAsync);
        api.MapGet("/realtime", realtime.HandleAsync);
        api.Map("/{**path}", static context => ApiErrors.WriteAsync(context, StatusCodes.Status404NotFound,
            $"Unknown endpoint: {context.Request.Method} {context.Request.Path}.", "invalid_request_error", "unknown_url"));
        return app;
    }
}
