using AiGate.Web.Features.Billing;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Infrastructure;

/// <summary>
/// Headers every response carries. The content security policy allows only our own scripts and
/// styles, so pages carry no inline script or style attributes.
/// </summary>
public static class SecurityHeaders
{
    private static readonly PathString ApiPath = new("/api");

    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app)
    {
        var policy = ContentSecurityPolicy(app.ApplicationServices.GetRequiredService<IOptions<StripeOptions>>().Value);
        return app.Use((context, next) =>
        {
            // Our own request id, unique across instances and restarts (Kestrel's is per process): it
            // keys usage rows and ledger entries, appears in logs and error pages, and users quote it.
            context.TraceIdentifier = PrefixedId.New("req_");
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers["X-Request-Id"] = context.TraceIdentifier;
            // The API answers JSON and event streams to programs, never a document a browser renders: the
            // page-only policies below would be bytes on every call that nothing reads.
            if (context.Request.Path.StartsWithSegments(ApiPath)) return next(context);
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "strict-origin-when-cross-origin";
            headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()";
            headers["Cross-Origin-Opener-Policy"] = "same-origin";
            headers.ContentSecurityPolicy = policy;
            return next(context);
        });
    }

    /// <summary>
    /// The policy, built once at start. <c>form-action</c> also governs where the redirect after a form POST
    /// may go (Chromium enforces it), so it lists 'self' plus exactly the origins the billing forms redirect
    /// to: Stripe Checkout and the Billing Portal (<see cref="StripeOptions.RedirectOrigins"/>).
    /// </summary>
    internal static string ContentSecurityPolicy(StripeOptions stripe)
    {
        var formAction = string.Join(' ', ["'self'", .. stripe.RedirectOrigins]);
        return "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
            $"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action {formAction}; frame-ancestors 'none'";
    }
}
