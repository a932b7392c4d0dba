namespace AiGate.Web.Features.Admin;

public static class AdminExtensions
{
    /// <summary>What admin pages share: the audit log.</summary>
    public static IHostApplicationBuilder AddAdmin(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddScoped<AuditLog>();
        return builder;
    }
}
