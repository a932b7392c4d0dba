using Microsoft.AspNetCore.Identity;

namespace AiGate.Web.Data;

/// <summary>A person who signs in to AiGate. Keys, credits and usage hang off this id.</summary>
public sealed class AppUser : IdentityUser<Guid>
{
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// The last authenticator (TOTP) time step accepted for this user. A code is accepted only for a
    /// later step, so each code works once (RFC 6238 §5.2); see ReplaySafeAuthenticatorTokenProvider.
    /// </summary>
    public long? TotpLastStep { get; set; }
}
