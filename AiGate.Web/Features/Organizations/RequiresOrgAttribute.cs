using System.Collections.Concurrent;
using System.Reflection;
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

    // What each page handler needs, read by reflection once per handler rather than on every request.
    private static readonly ConcurrentDictionary<(Type Page, MethodInfo? Handler), OrgPermission[]> Needs = new();

    public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var needs = Needs.GetOrAdd((context.HandlerInstance.GetType(), context.HandlerMethod?.MethodInfo), static key =>
            [.. key.Page.GetCustomAttributes<RequiresOrgAttribute>(inherit: true)
                .Concat(key.Handler?.GetCustomAttributes<RequiresOrgAttribute>(inherit: true) ?? [])
                .Select(a => a.Permission)]);
        if (needs.Length > 0 && context.HttpContext.User.Identity?.IsAuthenticated == true)
        {
            var current = await orgs.ResolveAsync(context.HttpContext.User, context.HttpContext.RequestAborted);
            if (Array.Exists(needs, n => !current.Can(n)))
            {
                context.Result = new ForbidResult();
                return;
            }
        }
        await next();
    }
}
