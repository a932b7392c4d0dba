using System.Security.Claims;
using System.Text;
using AiGate.Web.Features.Email;
using Microsoft.AspNetCore.WebUtilities;

namespace AiGate.Web.Features.Accounts;

public static class AccountLinks
{
    /// <summary>
    /// An absolute link for an e-mail: <see cref="EmailOptions.BaseUrl"/> when set (always in Production,
    /// so a forged Host header cannot redirect reset links), else the request's own scheme and host.
    /// </summary>
    public static string Absolute(HttpRequest request, EmailOptions options, string relativeUrl)
    {
        var baseUrl = string.IsNullOrWhiteSpace(options.BaseUrl) ? $"{request.Scheme}://{request.Host}{request.PathBase}" : options.BaseUrl;
        return baseUrl.TrimEnd('/') + "/" + relativeUrl.TrimStart('/');
    }

    /// <summary>
    /// An absolute link from a job, which has no request to take an address from: <see cref="EmailOptions.BaseUrl"/>
    /// (required in Production), else the address <c>scripts/run.sh</c> serves locally.
    /// </summary>
    public static string ForJob(EmailOptions options, string path)
    {
        var baseUrl = string.IsNullOrWhiteSpace(options.BaseUrl) ? "http://localhost:5080" : options.BaseUrl;
        return baseUrl.TrimEnd('/') + "/" + path.TrimStart('/');
    }

    /// <summary>Identity tokens contain '+', '/' and '='; links carry them Base64Url-encoded.</summary>
    public static string EncodeToken(string token) => WebEncoders.Base64UrlEncode(Encoding.UTF8.GetBytes(token));

    public static string? DecodeToken(string? code)
    {
        if (string.IsNullOrEmpty(code)) return null;
        try
        {
            return Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(code));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public static Guid GetUserId(this ClaimsPrincipal user) =>
        Guid.Parse(user.FindFirstValue(ClaimTypes.NameIdentifier) ?? throw new InvalidOperationException("Not signed in."));
}
