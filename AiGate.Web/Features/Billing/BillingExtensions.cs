using System.Security.Cryptography;
using AiGate.Web.Infrastructure;
using AiGate.Web.Features.Jobs;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Billing;

public static class BillingExtensions
{
    /// <summary>
    /// Plans and packs, the Stripe client and webhook processing. With <c>Stripe__SecretKey</c> the app talks
    /// to Stripe (<c>Stripe__WebhookSecret</c> is then required too); without it, outside Production, the
    /// local TEST checkout stands in. Production refuses to start without both secrets.
    /// </summary>
    public static IHostApplicationBuilder AddBilling(this IHostApplicationBuilder builder)
    {
        // Plans and packs: what the pricing page shows and checkout sells. Checked at start (inside the lists too),
        // so a mistyped price stops the deploy. Bound here only: binding twice would list every plan twice.
        builder.Services.AddOptions<BillingOptions>().BindConfiguration(BillingOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<BillingOptions>, BillingOptionsValidator>();
        builder.Services.AddOptions<StripeOptions>().BindConfiguration(StripeOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        var section = builder.Configuration.GetSection(StripeOptions.Section);
        var secretKey = section[nameof(StripeOptions.SecretKey)];
        var webhookSecret = section[nameof(StripeOptions.WebhookSecret)];
        var local = string.IsNullOrWhiteSpace(secretKey);
        if (builder.Environment.IsProduction() && (local || string.IsNullOrWhiteSpace(webhookSecret)))
            throw new StartupConfigurationException(
                "Payments are not configured: set Stripe__SecretKey and Stripe__WebhookSecret. Production never runs the local TEST checkout.");
        if (!local && string.IsNullOrWhiteSpace(webhookSecret))
            throw new StartupConfigurationException("Stripe__SecretKey is set but Stripe__WebhookSecret is not: webhooks could not be verified.");

        // Local mode makes up a secret per process unless one is configured (e.g. to replay events with the Stripe CLI).
        var secret = string.IsNullOrWhiteSpace(webhookSecret) ? "whsec_local_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)) : webhookSecret;
        builder.Services.AddSingleton(new StripeWebhookSecret(secret));

        if (local)
        {
            builder.Services.AddSingleton<LocalStripe>();
            builder.Services.AddSingleton<IStripeApi>(sp => sp.GetRequiredService<LocalStripe>());
            builder.Services.AddHttpClient(LocalCheckout.HttpClientName, c => c.Timeout = TimeSpan.FromSeconds(30));
            builder.Services.AddSingleton<LocalCheckout>();
        }
        else
        {
            // One long-lived client (Stripe.net's StripeClient is a singleton): the factory's handler, with connections
            // recycled every 5 minutes so DNS changes are seen, as the factory's handler rotation would for short-lived clients.
            builder.Services.AddHttpClient(StripeApi.HttpClientName)
                .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), AllowAutoRedirect = false })
                .SetHandlerLifetime(Timeout.InfiniteTimeSpan);
            builder.Services.AddSingleton(sp => StripeApi.CreateClient(sp.GetRequiredService<IOptions<StripeOptions>>().Value,
                sp.GetRequiredService<IHttpClientFactory>().CreateClient(StripeApi.HttpClientName)));
            builder.Services.AddSingleton<IStripeApi, StripeApi>();
        }

        builder.Services.AddSingleton<BillingAccounts>();
        builder.Services.AddSingleton<CheckoutFulfilment>();
        builder.Services.AddSingleton<StripeEventHandlers>();
        builder.Services.AddSingleton<StripeWebhookProcessor>();
        builder.Services.AddScoped<BillingCheckout>();

        var pollSeconds = builder.Configuration.GetValue($"{BillingOptions.Section}:{nameof(BillingOptions.DunningPollSeconds)}", 900);
        builder.AddRecurringJob<DunningJob>(DunningJob.Id, "billing", RecurringJobs.Every(TimeSpan.FromSeconds(Math.Max(10, pollSeconds))),
            "Chases failed plan payments: e-mails on day 0, 3 and 7, then the free plan.");
        return builder;
    }

    /// <summary>
    /// <c>POST /webhooks/stripe</c>: 200 for a processed or repeated event, 400 for a bad signature or body or an event
    /// of another API version (nothing changed), 500 when processing failed (rolled back; Stripe retries).
    /// </summary>
    public static IEndpointRouteBuilder MapBilling(this IEndpointRouteBuilder app)
    {
        app.MapPost("/webhooks/stripe", static async (HttpContext http, StripeWebhookProcessor processor, CancellationToken ct) =>
        {
            const int maxBytes = 1 << 20;   // Stripe's events are far smaller; anything bigger is not from Stripe
            if (http.Request.ContentLength > maxBytes) return Results.BadRequest(new { error = "payload too large" });
            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer, ct);
            if (buffer.Length > maxBytes) return Results.BadRequest(new { error = "payload too large" });

            return await processor.ProcessAsync(buffer.ToArray(), http.Request.Headers["Stripe-Signature"], ct) switch
            {
                WebhookOutcome.Processed => Results.Ok(new { received = true }),
                WebhookOutcome.Duplicate => Results.Ok(new { received = true, duplicate = true }),
                WebhookOutcome.BadSignature => Results.BadRequest(new { error = "invalid Stripe-Signature" }),
                WebhookOutcome.OtherApiVersion => Results.BadRequest(new { error = $"event API version is not {StripeOptions.ApiVersion}; create the webhook endpoint with that version" }),
                _ => Results.BadRequest(new { error = "not a Stripe event" }),
            };
        }).DisableAntiforgery();
        return app;
    }
}
