namespace AiGate.Web.Infrastructure;

/// <summary>
/// Headers every response carries. The content security policy allows only our own scripts and
/// styles, so pages carry no inline script or style attributes.
/// </summary>
public static class SecurityHeaders
{
    private const string ContentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) => app.Use(static (context, next) =>
    {
        // Our own request id, unique across instances and restarts (Kestrel's is per process): it
        // keys usage rows and ledger entries, appears in logs and error pages, and users quote it.
        context.TraceIdentifier = "req_" + Guid.CreateVersion7().ToString("N");
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "strict-origin-when-cross-origin";
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers["X-Request-Id"] = context.TraceIdentifier;
        return next(context);
    });
}
