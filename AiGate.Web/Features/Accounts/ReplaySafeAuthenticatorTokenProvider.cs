using System.Globalization;
using AiGate.Web.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Features.Accounts;

/// <summary>
/// Identity's authenticator provider accepts the same code again within its window and allows ±90 s
/// (aspnetcore#14423, #54524). This one follows RFC 6238 §5.2 and ASVS 6.5.1: codes from the previous,
/// current or next 30-second step only, and each step once per user — the accepted step is stored with
/// an atomic compare-and-set (<c>update … where totp_last_step &lt; step</c>), so of two concurrent
/// submissions of one code exactly one wins, on any instance.
/// </summary>
public sealed class ReplaySafeAuthenticatorTokenProvider(AppDbContext db, TimeProvider clock) : IUserTwoFactorTokenProvider<AppUser>
{
    public const string Name = "ReplaySafeAuthenticator";

    public async Task<bool> CanGenerateTwoFactorTokenAsync(UserManager<AppUser> manager, AppUser user) =>
        !string.IsNullOrWhiteSpace(await manager.GetAuthenticatorKeyAsync(user));

    /// <summary>The code comes from the user's app, never from us.</summary>
    public Task<string> GenerateAsync(string purpose, UserManager<AppUser> manager, AppUser user) => Task.FromResult(string.Empty);

    public async Task<bool> ValidateAsync(string purpose, string token, UserManager<AppUser> manager, AppUser user)
    {
        if (token.Length != 6 || !int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var code)) return false;
        var encodedKey = await manager.GetAuthenticatorKeyAsync(user);
        if (string.IsNullOrWhiteSpace(encodedKey)) return false;
        var key = Totp.FromBase32(encodedKey);

        var now = Totp.StepAt(clock.GetUtcNow());
        long? matched = null;
        for (var step = now - 1; step <= now + 1; step++)
            if (Totp.Code(key, step) == code) matched = step;   // constant work: every step is computed
        if (matched is not { } accepted) return false;

        var updated = await db.Users
            .Where(u => u.Id == user.Id && (u.TotpLastStep == null || u.TotpLastStep < accepted))
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.TotpLastStep, accepted));
        return updated == 1;
    }
}
