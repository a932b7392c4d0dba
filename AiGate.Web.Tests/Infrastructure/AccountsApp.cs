using System.Net;
using System.Text.RegularExpressions;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// The app for account tests: generous rate limits (one fixture tests them on purpose), security stamps
/// checked on every request (so "other sessions end" is observable without waiting a minute).
/// </summary>
public class AccountsApp : AiGateApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Accounts:PerIpPerMinute"] = "10000",
        ["Accounts:PerAccountPer15Minutes"] = "10000",
        ["Accounts:SecurityStampValidationSeconds"] = "0",
    };

    /// <summary>A browser-like client: https (the cookies are Secure with the __Host- prefix), cookies kept, redirects not followed.</summary>
    public WebSession NewSession() => new(CreateClient(new WebApplicationFactoryClientOptions
    {
        BaseAddress = new Uri("https://localhost"),
        AllowAutoRedirect = false,
        HandleCookies = true,
    }));

    public async Task<AppUser> CreateUserAsync(string email, string password, bool confirmed = true, bool admin = false)
    {
        await using var scope = Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>();
        var user = new AppUser { Id = Guid.CreateVersion7(), UserName = email, Email = email, EmailConfirmed = confirmed, CreatedAt = DateTimeOffset.UtcNow };
        var result = await users.CreateAsync(user, password);
        Assert.True(result.Succeeded, string.Join(" ", result.Errors.Select(e => e.Description)));
        if (admin)
        {
            await Roles.EnsureAdminRoleAsync(scope.ServiceProvider.GetRequiredService<RoleManager<IdentityRole<Guid>>>());
            await users.AddToRoleAsync(user, Roles.Admin);
        }
        return user;
    }

    /// <summary>A new confirmed user (e-mail <c>{prefix}-…@example.com</c>) logged in on a new session.</summary>
    public async Task<(Guid UserId, WebSession Session)> SignedInAsync(string prefix, string password = "password123")
    {
        var email = $"{prefix}-{Guid.NewGuid():N}@example.com";
        var user = await CreateUserAsync(email, password);
        var session = NewSession();
        Assert.Equal("/dashboard", (await session.LogInAsync(email, password)).Headers.Location?.OriginalString);
        return (user.Id, session);
    }

    public async Task<AppUser?> FindUserAsync(string email)
    {
        await using var scope = Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<UserManager<AppUser>>().FindByEmailAsync(email);
    }

    /// <summary>The outbox rows addressed to someone, oldest first.</summary>
    public async Task<List<OutboxEmail>> MailToAsync(string to)
    {
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        return await db.EmailOutbox.AsNoTracking().Where(e => e.ToAddress == to).OrderBy(e => e.CreatedAt).ToListAsync();
    }

    /// <summary>The link (path and query) in the latest mail of a kind to someone.</summary>
    public async Task<string> LinkInMailAsync(string to, string kind)
    {
        var mail = (await MailToAsync(to)).LastOrDefault(m => m.Kind == kind) ?? throw new InvalidOperationException($"No {kind} mail to {to}.");
        var url = Regex.Match(mail.TextBody, @"https?://\S+").Value;
        return new Uri(url).PathAndQuery;
    }

    /// <summary>Runs what the outbox job runs.</summary>
    public async Task<int> SendOutboxAsync()
    {
        await using var scope = Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<EmailOutboxSender>().SendDueAsync(CancellationToken.None);
    }

    /// <summary>Registers through the page and confirms through the mailed link, as a person would.</summary>
    public async Task<WebSession> RegisterConfirmAndLogInAsync(string email, string password)
    {
        var session = NewSession();
        var registered = await session.SubmitAsync("/Account/Register", new() { ["Input.Email"] = email, ["Input.Password"] = password, ["Input.ConfirmPassword"] = password });
        Assert.Equal(HttpStatusCode.Redirect, registered.StatusCode);
        var confirm = await session.GetAsync(await LinkInMailAsync(email, "confirm-email"));
        Assert.Contains("E-mail confirmed", await confirm.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var login = await session.LogInAsync(email, password);
        Assert.Equal("/dashboard", login.Headers.Location?.OriginalString);
        return session;
    }
}

/// <summary>One browser's worth of cookies; submits forms with the antiforgery token from the page, as a browser does.</summary>
public sealed partial class WebSession(HttpClient http) : IDisposable
{
    public HttpClient Http { get; } = http;

    public Task<HttpResponseMessage> GetAsync(string url) => Http.GetAsync(url);

    /// <summary>GETs <paramref name="pageUrl"/>, takes its antiforgery token, and POSTs the fields to <paramref name="action"/> (default: the page).</summary>
    public async Task<HttpResponseMessage> SubmitAsync(string pageUrl, Dictionary<string, string> fields, string? action = null)
    {
        var page = await Http.GetAsync(pageUrl);
        Assert.True(page.StatusCode == HttpStatusCode.OK, $"GET {pageUrl} answered {(int)page.StatusCode} {page.Headers.Location}");
        var html = await page.Content.ReadAsStringAsync();
        fields["__RequestVerificationToken"] = TokenOn(html, pageUrl);
        foreach (Match hidden in HiddenInput().Matches(html))   // what the browser would send along (e.g. the reset code)
        {
            var name = Regex.Match(hidden.Value, "name=\"([^\"]+)\"").Groups[1].Value;
            var value = Regex.Match(hidden.Value, "value=\"([^\"]*)\"").Groups[1].Value;
            if (name.Length > 0) fields.TryAdd(name, WebUtility.HtmlDecode(value));
        }
        return await Http.PostAsync(action ?? pageUrl, new FormUrlEncodedContent(fields));
    }

    public Task<HttpResponseMessage> LogInAsync(string email, string password, bool rememberMe = false) =>
        SubmitAsync("/Account/Login", new() { ["Input.Email"] = email, ["Input.Password"] = password, ["Input.RememberMe"] = rememberMe ? "true" : "false" });

    /// <summary>The antiforgery token of the page at <paramref name="url"/> (for posts a test builds itself).</summary>
    public async Task<string> AntiforgeryTokenAsync(string url) => TokenOn(await TextAsync(url), url);

    private static string TokenOn(string html, string url)
    {
        var token = AntiforgeryToken().Match(html);
        Assert.True(token.Success, $"no antiforgery token on {url}");
        return WebUtility.HtmlDecode(token.Groups[1].Value);
    }

    public async Task<string> TextAsync(string url) => await (await Http.GetAsync(url)).Content.ReadAsStringAsync();

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryToken();

    [GeneratedRegex("<input[^>]*type=\"hidden\"[^>]*>")]
    private static partial Regex HiddenInput();

    public void Dispose() => Http.Dispose();
}
