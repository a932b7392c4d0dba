using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Infrastructure;
using Microsoft.EntityFrameworkCore;
using AiGate.Web.Features.Jobs;

namespace AiGate.Web.Features.Email;

public static partial class EmailExtensions
{
    /// <summary>
    /// The outbox, its job and the transport: Resend when <c>Resend__ApiKey</c> is set; otherwise the
    /// local mailbox, which Production refuses (it also needs <c>Email__From</c> and <c>Email__BaseUrl</c>).
    /// </summary>
    public static IHostApplicationBuilder AddEmail(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<EmailOptions>().BindConfiguration(EmailOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<ResendOptions>().BindConfiguration(ResendOptions.Section).ValidateDataAnnotations().ValidateOnStart();

        var hasKey = !string.IsNullOrWhiteSpace(builder.Configuration[$"{ResendOptions.Section}:{nameof(ResendOptions.ApiKey)}"]);
        if (builder.Environment.IsProduction())
        {
            var missing = new[] { ("Resend__ApiKey", hasKey), ("Email__From", Has(builder, "From")), ("Email__BaseUrl", Has(builder, "BaseUrl")) }
                .Where(s => !s.Item2).Select(s => s.Item1).ToList();
            if (missing.Count > 0)
                throw new StartupConfigurationException(
                    $"E-mail is not configured: set {string.Join(", ", missing)}. Production sends every e-mail through Resend " +
                    "and never uses the local development mailbox.");
        }

        if (hasKey)
            builder.Services.AddHttpClient<IEmailSender, ResendEmailSender>(c =>
            {
                c.Timeout = TimeSpan.FromSeconds(30);
                c.DefaultRequestHeaders.UserAgent.ParseAdd("AiGate/1.0");   // Resend rejects requests without a User-Agent
            });
        else
            builder.Services.AddSingleton<IEmailSender, LocalMailboxSender>();

        builder.Services.AddScoped<EmailOutbox>();
        builder.Services.AddScoped<EmailOutboxSender>();
        builder.Services.AddSingleton<EmailOutboxNudge>();
        builder.Services.ConfigureDbContext<AppDbContext>((sp, o) => o.AddInterceptors(sp.GetRequiredService<EmailOutboxNudge>()));

        var pollSeconds = builder.Configuration.GetValue($"{EmailOptions.Section}:{nameof(EmailOptions.PollSeconds)}", 15);
        builder.AddRecurringJob<EmailOutboxJob>(EmailOutboxJob.Id, "email", RecurringJobs.Every(TimeSpan.FromSeconds(Math.Max(1, pollSeconds))),
            "Sends due outbox e-mails (also triggered as soon as one is enqueued).");
        return builder;
    }

    private static bool Has(IHostApplicationBuilder builder, string name) =>
        !string.IsNullOrWhiteSpace(builder.Configuration[$"{EmailOptions.Section}:{name}"]);

    /// <summary>
    /// <c>GET /admin/email/{id}/html</c>: one outbox e-mail's HTML, for the preview frames of the admin
    /// outbox and the mailbox. Served with a sandboxing CSP (no script, no network), framable only by us.
    /// </summary>
    public static IEndpointRouteBuilder MapEmail(this IEndpointRouteBuilder app)
    {
        app.MapGet("/admin/email/{id:guid}/html", static async (Guid id, HttpContext http, AppDbContext db, IWebHostEnvironment env, CancellationToken ct) =>
        {
            var row = await db.EmailOutbox.AsNoTracking().Where(e => e.Id == id)
                .Select(e => new { e.HtmlBody, e.Status }).FirstOrDefaultAsync(ct);
            var local = row?.Status == OutboxStatus.DeliveredLocally && env.IsDevelopment();
            if (!local && !http.User.IsInRole(Accounts.Roles.Admin))
                return http.User.Identity?.IsAuthenticated == true ? Results.Forbid() : Results.Challenge();
            if (row is null) return Results.NotFound();
            http.Response.Headers.ContentSecurityPolicy = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'";
            http.Response.Headers.XFrameOptions = "SAMEORIGIN";
            return Results.Content(ShowSecrets(row.Status, env) ? row.HtmlBody : MaskSecrets(row.HtmlBody), "text/html; charset=utf-8");
        });
        return app;
    }

    /// <summary>Links in mail carry live tokens (confirm, reset). Only mail kept in the local Development mailbox shows them.</summary>
    public static bool ShowSecrets(OutboxStatus status, IWebHostEnvironment env) => status == OutboxStatus.DeliveredLocally && env.IsDevelopment();

    /// <summary>Replaces the values of <c>code=</c> and <c>token=</c> query parameters, so an admin's preview cannot be used to take over an account.</summary>
    public static string MaskSecrets(string body) => SecretParameter().Replace(body, "hidden");

    [GeneratedRegex(@"(?<=[?&](?:amp;)?(?:code|token)=)[^&""'\s<]+", RegexOptions.IgnoreCase)]
    private static partial Regex SecretParameter();
}
