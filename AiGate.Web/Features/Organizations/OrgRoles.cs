namespace AiGate.Web.Features.Organizations;

/// <summary>A member's role in an organization (issue 17). Stored by <see cref="OrgRoles.Name"/>.</summary>
public enum OrgRole { Member, Billing, Admin, Owner }

/// <summary>What a page or handler needs; <see cref="OrgRoles.Allows"/> is the whole matrix.</summary>
public enum OrgPermission
{
    /// <summary>Create, rename, rotate and revoke one's own keys; see one's own usage.</summary>
    UseOwnKeys,
    /// <summary>See and revoke every member's keys.</summary>
    ManageAllKeys,
    /// <summary>Everyone's usage and activity, grouped by member.</summary>
    ViewOrgUsage,
    /// <summary>The balance and the ledger.</summary>
    ViewBalance,
    /// <summary>Invite, remove, change roles (never the owner's) and set members' budgets and caps.</summary>
    ManageMembers,
    /// <summary>The organization's own provider keys (BYOK).</summary>
    ManageProviderKeys,
    /// <summary>Buy credits, change the plan, the Stripe portal, receipts.</summary>
    ManageBilling,
    /// <summary>The organization's usage alerts and monthly budget.</summary>
    ManageAlerts,
    /// <summary>Rename the organization.</summary>
    RenameOrganization,
    /// <summary>Delete the organization and hand it to another member.</summary>
    DeleteOrTransfer,
}

public static class OrgRoles
{
    /// <summary>The role matrix: every page and handler asks this, and a test walks all of it.</summary>
    public static bool Allows(OrgRole role, OrgPermission permission) => permission switch
    {
        OrgPermission.UseOwnKeys => true,
        OrgPermission.ManageAllKeys or OrgPermission.ManageMembers or OrgPermission.ManageProviderKeys => role is OrgRole.Owner or OrgRole.Admin,
        OrgPermission.ViewOrgUsage or OrgPermission.ViewBalance or OrgPermission.ManageAlerts =>
            role is OrgRole.Owner or OrgRole.Admin or OrgRole.Billing,
        OrgPermission.ManageBilling => role is OrgRole.Owner or OrgRole.Billing,
        OrgPermission.RenameOrganization or OrgPermission.DeleteOrTransfer => role is OrgRole.Owner,
        _ => false,
    };

    public static string Name(OrgRole role) => role switch
    {
        OrgRole.Owner => "owner",
        OrgRole.Admin => "admin",
        OrgRole.Billing => "billing",
        _ => "member",
    };

    public static OrgRole Parse(string value) => value switch
    {
        "owner" => OrgRole.Owner,
        "admin" => OrgRole.Admin,
        "billing" => OrgRole.Billing,
        "member" => OrgRole.Member,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "Not an organization role."),
    };

    public static bool TryParse(string? value, out OrgRole role)
    {
        role = OrgRole.Member;
        if (value is not ("owner" or "admin" or "billing" or "member")) return false;
        role = Parse(value);
        return true;
    }

    /// <summary>What the role may do, for the team page.</summary>
    public static string Describe(OrgRole role) => role switch
    {
        OrgRole.Owner => "Everything, including deleting the organization and handing it over",
        OrgRole.Admin => "Members, keys, limits and provider keys",
        OrgRole.Billing => "Payments, plan, invoices, alerts and all usage",
        _ => "Their own keys and usage",
    };
}
