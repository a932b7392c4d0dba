using Microsoft.AspNetCore.Mvc;

namespace AiGate.Web.Features.Organizations;

public static class OrganizationsExtensions
{
    /// <summary>Organizations (issue 17): the current organization of each page request and the role checks of its pages.</summary>
    public static IHostApplicationBuilder AddOrganizations(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<OrganizationsOptions>().BindConfiguration(OrganizationsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddScoped<OrgContext>();
        builder.Services.AddScoped<OrgInvitations>();
        builder.Services.AddScoped<OrgPageFilter>();
        builder.Services.Configure<MvcOptions>(o => o.Filters.AddService<OrgPageFilter>());
        return builder;
    }
}
