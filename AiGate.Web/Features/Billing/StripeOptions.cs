using System.ComponentModel.DataAnnotations;
using Stripe;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// Stripe settings ("Stripe"). Without <see cref="SecretKey"/> the app runs the local TEST checkout
/// (<see cref="LocalStripe"/>), which Production refuses at start.
/// </summary>
public sealed class StripeOptions
{
    public const string Section = "Stripe";

    /// <summary>
    /// The API version every request pins (<c>Stripe-Version</c>) and the webhook endpoint must be created with: the one
    /// Stripe.net was generated for, whose object shapes its types (and so our handlers) read. Upgrading Stripe.net
    /// changes it; docs/billing.md says what to do then.
    /// </summary>
    public static string ApiVersion => StripeConfiguration.ApiVersion;

    /// <summary>A secret or restricted key (<c>sk_live_…</c>, <c>sk_test_…</c>, <c>rk_…</c>), from the environment only.</summary>
    public string? SecretKey { get; set; }

    /// <summary>The webhook endpoint's signing secret (<c>whsec_…</c>), from the environment only.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Stripe's API address; tests and staging point it at a fake.</summary>
    [Required]
    public Uri ApiBase { get; set; } = new("https://api.stripe.com");

    /// <summary>Per-attempt timeout for API calls (the HttpClient's, which Stripe.net's retries call once per attempt).</summary>
    [Range(1, 120)]
    public int TimeoutSeconds { get; set; } = 20;

    /// <summary>Stripe.net's <c>MaxNetworkRetries</c>: retries after a network failure, a 409 or a 5xx, or when Stripe answers <c>Stripe-Should-Retry: true</c> (same Idempotency-Key each time).</summary>
    [Range(0, 5)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>Oldest (and furthest in the future) a webhook's signed timestamp may be, as Stripe's libraries default.</summary>
    [Range(1, 3600)]
    public int WebhookToleranceSeconds { get; set; } = 300;

    public bool IsLocal => string.IsNullOrWhiteSpace(SecretKey);

    /// <summary>Stripe's API host: when <see cref="ApiBase"/> points elsewhere, it is a fake (tests, staging).</summary>
    public const string StripeApiHost = "api.stripe.com";

    public bool IsFake => !string.Equals(ApiBase.Host, StripeApiHost, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The origins the billing page redirects the browser to after its form POSTs, which the content security
    /// policy's <c>form-action</c> must allow: none for the local TEST checkout (same origin); with Stripe, the
    /// origins of a Checkout Session's <c>url</c> (<c>checkout.stripe.com</c>) and a Billing Portal session's
    /// <c>url</c> (<c>billing.stripe.com</c>); with a fake Stripe, the fake's own origin, where it serves those pages.
    /// </summary>
    public IReadOnlyList<string> RedirectOrigins =>
        IsLocal ? []
        : !IsFake ? ["https://checkout.stripe.com", "https://billing.stripe.com"]
        : [ApiBase.GetLeftPart(UriPartial.Authority)];
}
