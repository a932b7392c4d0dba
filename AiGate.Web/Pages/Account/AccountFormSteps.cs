using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.Routing;

namespace AiGate.Web.Pages.Account;

/// <summary>
/// Steps the account pages share: accepting a public form (valid input within its rate limit), and the token links
/// that the confirmation, reset and e-mail change messages carry. Extensions on the page, because each step writes
/// to the page's own ModelState and response or uses its URL helper.
/// </summary>
internal static class AccountFormSteps
{
    /// <summary>Where a successful log-in goes when it has no local return address.</summary>
    public const string AfterLoginPath = "/dashboard";

    /// <summary>The page to go to after logging in: <paramref name="returnUrl"/> when it is local, else <see cref="AfterLoginPath"/>.</summary>
    public static string AfterLoginUrl(this PageModel page, string? returnUrl) => page.Url.IsLocalUrl(returnUrl) ? returnUrl! : AfterLoginPath;

    /// <summary>
    /// How every public account form starts: the input must be valid, then the attempt must fit the form's limits
    /// (per IP and per address; invalid input uses up no attempt). Over the limit the page gets the limit's message
    /// and status 429. False: the caller returns <c>Page()</c>; true: <paramref name="email"/> is the trimmed address.
    /// </summary>
    public static bool TryAccept(this PageModel page, AccountRateLimits limits, AccountForm form, string? input, out string email)
    {
        email = "";
        if (!page.ModelState.IsValid) return false;   // first: an empty field binds as null
        email = input?.Trim() ?? "";
        if (limits.TryAcquire(form, page.HttpContext, email)) return true;
        page.ModelState.AddModelError("", AccountRateLimits.Message);
        page.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        return false;
    }

    /// <summary>
    /// Queues the "confirm your e-mail" message with a fresh confirmation link (sign-up and resend); the caller saves.
    /// A local <paramref name="returnUrl"/> (an invitation's page) rides along, so logging in after confirming leads back to it.
    /// </summary>
    public static async Task QueueConfirmationLinkAsync(this PageModel page, UserManager<AppUser> users, EmailOutbox outbox, EmailOptions options, AppUser user,
        string? returnUrl = null)
    {
        var token = await users.GenerateEmailConfirmationTokenAsync(user);
        var values = page.Url.IsLocalUrl(returnUrl) ? new { returnUrl } : null;
        outbox.Enqueue(user.Email!, EmailTemplates.ConfirmEmail(page.TokenLink(options, "/Account/ConfirmEmail", user.Id, token, values)), user.Id);
    }

    /// <summary>
    /// The absolute link for an e-mail to <paramref name="pageName"/>: <c>?userId=…</c>, any <paramref name="values"/>,
    /// then <c>code=</c> the Identity token, Base64Url-encoded (<see cref="AccountLinks"/>).
    /// </summary>
    public static string TokenLink(this PageModel page, EmailOptions options, string pageName, Guid userId, string token, object? values = null)
    {
        var route = new RouteValueDictionary { ["userId"] = userId };
        foreach (var (name, value) in new RouteValueDictionary(values)) route[name] = value;
        route["code"] = AccountLinks.EncodeToken(token);
        var url = page.Url.Page(pageName, null, route) ?? throw new InvalidOperationException($"No page {pageName}.");
        return AccountLinks.Absolute(page.Request, options, url);
    }
}

/// <summary>The form of the pages that ask only for an address (forgot password, resend the confirmation link).</summary>
public sealed class EmailInputModel
{
    [Required, EmailAddress, StringLength(256), Display(Name = "E-mail")]
    public string Email { get; set; } = "";
}
