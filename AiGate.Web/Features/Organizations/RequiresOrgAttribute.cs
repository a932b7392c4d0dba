using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;

namespace AiGate.Web.Features.Organizations;

/// <summary>
/// The page works inside the user's current organization and needs <see cref="Permission"/> there. On a page
/// model it covers every handler; on a handler method it adds to the page's. Checked by <see cref="OrgPageFilter"/>:
/// a user whose role lacks the permission gets a 403 (the access-denied page).
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = true)]
public sealed class RequiresOrgAttribute(OrgPermission permission = OrgPermission.UseOwnKeys) : Attribute
{
    public OrgPermission Permission { get; } = permission;
}

/// <summary>Resolves the current organization for pages marked <see cref="RequiresOrgAttribute"/> and enforces their permissions.</summary>
public sealed class OrgPageFilter(OrgContext orgs) : IAsyncPageFilter
{
    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var needs = context.HandlerInstance.GetType().GetCustomAttributes(typeof(RequiresOrgAttribute), inherit: true)
            .Concat(context.HandlerMethod?.MethodInfo.GetCustomAttributes(typeof(RequiresOrgAttribute), inherit: true) ?? [])
            .Cast<RequiresOrgAttribute>().ToList();
        if (needs.Count > 0 && context.HttpContext.User.Identity?.IsAuthenticated == true)
        {
            var current = await orgs.ResolveAsync(context.HttpContext.User, context.HttpContext.RequestAborted);
            if (needs.Any(n => !current.Can(n.Permission)))
            {
                context.Result = new ForbidResult();
                return;
            }
        }
        await next();
    }
}
