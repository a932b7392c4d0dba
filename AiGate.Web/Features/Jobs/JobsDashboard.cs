using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Admin;
using AiGate.Web.Infrastructure;
using Hangfire;
using Hangfire.Dashboard;

namespace AiGate.Web.Features.Jobs;

/// <summary>
/// Hangfire's dashboard at <c>/admin/hangfire</c>, for admins only: the endpoint requires the admin policy (an
/// anonymous visitor is sent to sign in, a signed-in non-admin gets 403), and <see cref="AdminOnly"/> checks the
/// cookie identity's role again inside Hangfire. Its POSTs (trigger, requeue, delete) carry ASP.NET Core's
/// antiforgery token, which Hangfire validates, and each one that succeeds is written to <c>audit_log</c>.
/// </summary>
public static partial class JobsDashboard
{
    public const string Path = "/admin/hangfire";

    /// <summary>
    /// Hangfire's pages use inline scripts and styles, which the app's CSP forbids; under this path alone they
    /// are allowed. Everything else stays as strict (same origin only, no framing, no plugins).
    /// </summary>
    private const string ContentSecurityPolicy =
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; " +
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    public static IEndpointRouteBuilder MapJobsDashboard(this WebApplication app)
    {
        app.UseWhen(static c => c.Request.Path.StartsWithSegments(Path), static b => b.Use(AuditAsync));
        app.MapHangfireDashboard(Path, new DashboardOptions
        {
            Authorization = [new AdminOnly()],
            AppPath = "/admin/jobs",
            DashboardTitle = "AiGate jobs",
            DisplayStorageConnectionString = false,   // never show the database credentials
            DefaultRecordsPerPage = 20,
        }).RequireAuthorization(AccountPolicies.Admin);
        return app;
    }

    /// <summary>Inside Hangfire: the request's cookie identity must have the admin role.</summary>
    public sealed class AdminOnly : IDashboardAuthorizationFilter
    {
        public bool Authorize(DashboardContext context) => context.GetHttpContext().User.IsInRole(Roles.Admin);
    }

    /// <summary>
    /// Sets the dashboard's CSP, and audits its actions: a POST that Hangfire answered with success is an admin
    /// action on jobs (<c>job.trigger</c>, <c>job.requeue</c>, <c>job.delete</c>…) on the ids in its form.
    /// </summary>
    private static async Task AuditAsync(HttpContext context, RequestDelegate next)
    {
        context.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        if (!HttpMethods.IsPost(context.Request.Method) || context.User.Identity?.IsAuthenticated != true)
        {
            await next(context);
            return;
        }
        // Hangfire reads the same form afterwards (ASP.NET caches it).
        var form = context.Request.HasFormContentType ? await context.Request.ReadFormAsync(context.RequestAborted) : null;
        var action = ActionOf(context.Request.Path.Value![Path.Length..]);
        JobPauses.ManualTrigger.Value = action == "job.trigger";
        try
        {
            await next(context);
        }
        finally
        {
            JobPauses.ManualTrigger.Value = false;
        }
        if (context.Response.StatusCode is < 200 or >= 300 || action is null) return;

        // The jobs acted on: the ticked ids of a list page, else the id in the path (a job's own page).
        var ids = form?["jobs[]"].ToString() is { Length: > 0 } many ? many : context.Request.Path.Value!;
        var services = context.RequestServices;
        var audit = services.GetRequiredService<AuditLog>();
        audit.Add(new AuditChange(action, ids, Detail: $"from the dashboard: {context.Request.Path.Value}"));
        await services.GetRequiredService<AppDbContext>().SaveChangesAsync(CancellationToken.None);
    }

    /// <summary>
    /// The audit verb of a dashboard POST path: <c>/recurring/trigger</c> is <c>job.trigger</c>, <c>/jobs/failed/requeue</c>
    /// is <c>job.requeue</c>, <c>/jobs/actions/delete/{id}</c> is <c>job.delete</c>. Null for POSTs that change nothing
    /// (the dashboard's live statistics poll).
    /// </summary>
    internal static string? ActionOf(string path)
    {
        if (path.StartsWith("/stats", StringComparison.OrdinalIgnoreCase)) return null;
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var verb in (ReadOnlySpan<string>)["trigger", "requeue", "delete", "remove"])
            if (segments.Contains(verb, StringComparer.OrdinalIgnoreCase))
                return "job." + (verb == "remove" ? "delete" : verb);
        return "job." + (segments.Length > 0 ? segments[^1].ToLowerInvariant() : "action");
    }
}
