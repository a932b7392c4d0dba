using Microsoft.Extensions.DependencyInjection.Extensions;

namespace AiGate.Web.Features.Byok;

public static class ByokExtensions
{
    /// <summary>Users' own provider keys (issue 14): the key cache, the SSRF guard, custom endpoints, the page's commands.</summary>
    public static IHostApplicationBuilder AddByok(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ByokOptions>().BindConfiguration(ByokOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.TryAddSingleton<IHostResolver, DnsHostResolver>();
        builder.Services.AddSingleton<OutboundAddressGuard>();
        builder.Services.AddSingleton<ByokKeys>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ByokKeys>());
        builder.Services.AddSingleton<CustomModels>();
        builder.Services.AddSingleton<ByokGateway>();
        builder.Services.AddScoped<ByokKeyAdmin>();
        return builder;
    }
}
