using AiGate.Web.Data;
using AiGate.Web.Features.Organizations;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Team;

/// <summary>
/// The link from an invitation e-mail (issue 17). Anyone holding the link sees which organization invited them and is
/// sent to log in or sign up with a way back here; a signed-in user whose confirmed e-mail is the invited address
/// accepts with a POST (a GET never changes anything, so mail scanners that open links accept nothing).
/// </summary>
[AllowAnonymous]
public sealed class InviteModel(AppDbContext db, OrgInvitations invitations, UserManager<AppUser> users) : PageModel
{
    public string? Token { get; private set; }
    public string? OrganizationName { get; private set; }
    public OrgRole Role { get; private set; }
    public string? Error { get; private set; }
    public bool SignedIn => User.Identity?.IsAuthenticated == true;

    /// <summary>Where log in and sign up come back to: this page with its token.</summary>
    public string ReturnUrl => $"{OrgInvitations.AcceptPath}?token={Uri.EscapeDataString(Token ?? "")}";

    public async Task OnGetAsync(string? token, CancellationToken ct)
    {
        Response.Headers.CacheControl = "no-store";
        var invitation = await LoadAsync(token, ct);
        // Say at once when the signed-in account is not the invited one (the POST checks again).
        if (Error is null && SignedIn && await users.GetUserAsync(User) is { } user && user.NormalizedEmail != invitation!.NormalizedEmail)
            Error = $"This invitation was sent to another e-mail address than yours ({user.Email}). Log in with the invited address to accept it.";
    }

    public async Task<IActionResult> OnPostAsync(string? token, CancellationToken ct)
    {
        Response.Headers.CacheControl = "no-store";
        if (!SignedIn) return RedirectToPage("/Account/Login", new { returnUrl = $"{OrgInvitations.AcceptPath}?token={token}" });
        var user = await users.GetUserAsync(User);
        if (user is null) return Challenge();
        var outcome = await invitations.AcceptAsync(token, user, ct);
        if (!outcome.Ok)
        {
            await LoadAsync(token, ct);
            Error = outcome.Error;
            return Page();
        }
        var name = await db.Set<Organization>().AsNoTracking().Where(o => o.Id == outcome.Invitation!.OrgId).Select(o => o.Name).FirstAsync(ct);
        TempData["StatusMessage"] = $"Welcome to {name}: you joined as {OrgRoles.Name(outcome.Invitation!.Role)}.";
        return Redirect("/organization");
    }

    private async Task<OrgInvitation?> LoadAsync(string? token, CancellationToken ct)
    {
        Token = token;
        var invitation = await invitations.FindAsync(token, ct);
        Error = invitations.Unusable(invitation);
        if (invitation is null) return null;
        Role = invitation.Role;
        OrganizationName = await db.Set<Organization>().AsNoTracking().Where(o => o.Id == invitation.OrgId).Select(o => o.Name).FirstOrDefaultAsync(ct);
        return invitation;
    }
}
