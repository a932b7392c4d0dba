using System.Net;
using System.Reflection;
using System.Text.RegularExpressions;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Infrastructure;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>
/// Every page under /Admin and every POST handler on it, found by asking the app (so a page added later is in the
/// matrix without anyone remembering to list it): signed-out visitors go to the login page, users without the admin
/// role are refused, admins get the page, and an admin's POST without an antiforgery token is refused.
/// </summary>
public sealed partial class AdminAuthorizationMatrixTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    private const string Password = "a long enough passphrase";

    /// <summary>The admin pages the app serves: route (route values filled with an id that exists nowhere) and handlers.</summary>
    private List<(string Url, bool HasRouteValues, List<string> PostHandlers)> AdminPages()
    {
        var descriptors = app.Services.GetRequiredService<IActionDescriptorCollectionProvider>().ActionDescriptors.Items
            .OfType<CompiledPageActionDescriptor>()
            .Where(d => d.ViewEnginePath.StartsWith("/Admin/", StringComparison.Ordinal) && !d.ViewEnginePath.Contains("/_", StringComparison.Ordinal))
            .GroupBy(d => d.ViewEnginePath);
        var pages = new List<(string, bool, List<string>)>();
        foreach (var page in descriptors)
        {
            var descriptor = page.First();
            var template = descriptor.AttributeRouteInfo!.Template!;
            var url = "/" + RouteValue().Replace(template, Guid.NewGuid().ToString());
            var handlers = descriptor.HandlerMethods.Where(h => h.HttpMethod.Equals("POST", StringComparison.OrdinalIgnoreCase))
                .Select(h => h.Name ?? "").Distinct().ToList();
            pages.Add((url.TrimEnd('/') is { Length: > 0 } u ? u : "/", template.Contains('{'), handlers));
        }
        return pages;
    }

    [Fact]
    public async Task Every_admin_page_and_post_handler_refuses_visitors_and_users_and_serves_admins()
    {
        var pages = AdminPages();
        Assert.Contains(pages, p => p.Url.Equals("/Admin/Users", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(pages, p => p.PostHandlers.Count > 0);   // the matrix covers handlers, not only pages

        using var anonymous = app.NewSession();
        var userEmail = $"user-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(userEmail, Password);
        using var user = app.NewSession();
        await user.LogInAsync(userEmail, Password);
        var adminEmail = $"admin-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(adminEmail, Password, admin: true);
        using var admin = app.NewSession();
        await admin.LogInAsync(adminEmail, Password);
        var audited = await app.Database.ScalarAsync<long>("select count(*) from audit_log");

        var failures = new List<string>();
        foreach (var (url, hasRouteValues, handlers) in pages)
        {
            Expect(failures, "anonymous GET " + url, await anonymous.GetAsync(url), "/Account/Login");
            Expect(failures, "user GET " + url, await user.GetAsync(url), "/Account/AccessDenied");
            var served = await admin.GetAsync(url);
            // A page addressed by an id shows "not found" for one that exists nowhere; that is still being let in.
            var allowed = hasRouteValues ? served.StatusCode is HttpStatusCode.OK or HttpStatusCode.NotFound : served.StatusCode == HttpStatusCode.OK;
            if (!allowed) failures.Add($"admin GET {url}: {(int)served.StatusCode} {served.Headers.Location}");

            foreach (var handler in handlers)
            {
                var target = handler.Length == 0 ? url : $"{url}?handler={handler}";
                Expect(failures, "anonymous POST " + target, await anonymous.Http.PostAsync(target, Empty()), "/Account/Login");
                Expect(failures, "user POST " + target, await user.Http.PostAsync(target, Empty()), "/Account/AccessDenied");
                var forged = await admin.Http.PostAsync(target, Empty());
                if (forged.StatusCode != HttpStatusCode.BadRequest)
                    failures.Add($"admin POST {target} without an antiforgery token: {(int)forged.StatusCode}, expected 400");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // Nothing refused above changed anything.
        Assert.Equal(audited, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
    }

    private static void Expect(List<string> failures, string what, HttpResponseMessage response, string redirectTo)
    {
        var location = response.Headers.Location is { } l ? (l.IsAbsoluteUri ? l.PathAndQuery : l.OriginalString) : "";
        if (response.StatusCode != HttpStatusCode.Redirect || !location.StartsWith(redirectTo, StringComparison.Ordinal))
            failures.Add($"{what}: {(int)response.StatusCode} {response.Headers.Location}, expected a redirect to {redirectTo}");
    }

    private static FormUrlEncodedContent Empty() => new([new("id", "1")]);

    [GeneratedRegex(@"\{[^}]+\}")]
    private static partial Regex RouteValue();
}
