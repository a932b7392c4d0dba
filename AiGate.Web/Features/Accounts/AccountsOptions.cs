using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Accounts;

/// <summary>Account settings ("Accounts"): anti-automation limits and how quickly other sessions notice a security change.</summary>
public sealed class AccountsOptions
{
    public const string Section = "Accounts";

    /// <summary>Register, log-in, forgot-password and resend-confirmation attempts per client IP and minute (each form counted on its own).</summary>
    [Range(1, 100_000)]
    public int PerIpPerMinute { get; set; } = 20;

    /// <summary>Attempts per e-mail address and 15 minutes, per form (limits mail bombing and password spraying of one account).</summary>
    [Range(1, 100_000)]
    public int PerAccountPer15Minutes { get; set; } = 10;

    /// <summary>
    /// How often a session's security stamp is re-checked: after a password change, "sign out
    /// everywhere" or turning 2FA off, other sessions end within this many seconds (RELIABILITY I9: ≤ 60).
    /// </summary>
    [Range(0, 60)]
    public int SecurityStampValidationSeconds { get; set; } = 60;
}
