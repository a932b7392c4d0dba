using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Accounts;

public enum AccountForm { Register, Login, ForgotPassword, ResendConfirmation }

/// <summary>
/// Anti-automation for the forms anyone can post (ASVS 2.2.1 / 6.3.1): fixed windows per client IP and
/// per e-mail address, per form. In memory, per instance: with N instances an attacker gets N times
/// the budget, which still bounds mail bombing; account lockout (in the database) bounds guessing.
/// </summary>
public sealed class AccountRateLimits(IOptions<AccountsOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(key =>
        RateLimitPartition.GetFixedWindowLimiter(key, k => k.Contains("|ip|", StringComparison.Ordinal)
            ? new FixedWindowRateLimiterOptions { PermitLimit = options.Value.PerIpPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }
            : new FixedWindowRateLimiterOptions { PermitLimit = options.Value.PerAccountPer15Minutes, Window = TimeSpan.FromMinutes(15), QueueLimit = 0 }));

    /// <summary>True when this attempt may go ahead; false means answer 429 with a message.</summary>
    public bool TryAcquire(AccountForm form, HttpContext http, string? email)
    {
        var ip = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        using var byIp = _limiter.AttemptAcquire($"{form}|ip|{ip}");
        if (!byIp.IsAcquired) return false;
        if (string.IsNullOrWhiteSpace(email)) return true;
        using var byAccount = _limiter.AttemptAcquire($"{form}|account|{email.Trim().ToUpperInvariant()}");
        return byAccount.IsAcquired;
    }

    public const string Message = "Too many attempts. Please wait a few minutes and try again.";

    public void Dispose() => _limiter.Dispose();
}
