using Microsoft.AspNetCore.Identity;

namespace AiGate.Web.Data;

/// <summary>A person who signs in to AiGate. Keys, credits and usage belong to organizations; each user has a personal one with this id.</summary>
public sealed class AppUser : IdentityUser<Guid>
{
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// The last authenticator (TOTP) time step accepted for this user. A code is accepted only for a
    /// later step, so each code works once (RFC 6238 §5.2); see ReplaySafeAuthenticatorTokenProvider.
    /// </summary>
    public long? TotpLastStep { get; set; }

    /// <summary>Set by an operator (/Admin/Users): every key of the account is refused with a 403 that says so, on every instance.</summary>
    public DateTimeOffset? SuspendedAt { get; set; }

    /// <summary>Why, shown to the user on their pages; kept while suspended.</summary>
    [System.ComponentModel.DataAnnotations.MaxLength(500)]
    public string? SuspensionReason { get; set; }

    /// <summary>Account-wide requests a minute set by an operator; beats the plan and the usage tier. Null: none.</summary>
    public int? RequestsPerMinuteOverride { get; set; }

    /// <summary>Account-wide tokens a minute set by an operator; beats the plan and the usage tier. Null: none.</summary>
    public long? TokensPerMinuteOverride { get; set; }

    /// <summary>The organization last chosen in the switcher; checked against the memberships on every request.</summary>
    public Guid? CurrentOrgId { get; set; }
}
