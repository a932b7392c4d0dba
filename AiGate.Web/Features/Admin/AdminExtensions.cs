namespace AiGate.Web.Features.Admin;

public static class AdminExtensions
{
    /// <summary>What admin pages share: the audit log and the actions of the user page.</summary>
    public static IHostApplicationBuilder AddAdmin(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddScoped<AuditLog>();
        builder.Services.AddScoped<AccountActions>();
        return builder;
    }
}
