using System.Net;
using System.Reflection;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc.RazorPages;
using static AiGate.Web.Features.Organizations.OrgPermission;

namespace AiGate.Web.Tests.Features.Organizations;

/// <summary>The matrix fixture: one team organization with an owner, an admin, a billing member and a plain member, all signed in.</summary>
public sealed class OrgMatrixApp : AccountsApp
{
    private Team? _team;
    public Team Team => _team ?? throw new InvalidOperationException("Not initialised yet.");

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _team = await this.CreateTeamAsync("Matrix team", OrgRole.Owner, OrgRole.Admin, OrgRole.Billing, OrgRole.Member);
    }
}

/// <summary>
/// The role matrix of issue 17, proven over HTTP: every organization page and POST handler, requested by each role of a team
/// through the real app, is served exactly to the roles the table below allows and refused (redirect to
/// /Account/AccessDenied) to the others. The expected column is <see cref="Matrix"/>, written out by hand, never asked of
/// <see cref="OrgRoles.Allows"/>, so a change to the matrix in the code fails here until the table is changed too.
/// To cover a new page or handler, add a row to <see cref="Endpoints"/>.
/// </summary>
public sealed class OrgRoleMatrixTests(OrgMatrixApp app) : IClassFixture<OrgMatrixApp>
{
    /// <summary>Who may do what (issue 17): the one table this test and <see cref="OrgRoles.Allows"/> must agree on.</summary>
    public static readonly IReadOnlyDictionary<OrgPermission, OrgRole[]> Matrix = new Dictionary<OrgPermission, OrgRole[]>
    {
        [UseOwnKeys] = [OrgRole.Owner, OrgRole.Admin, OrgRole.Billing, OrgRole.Member],
        [ManageAllKeys] = [OrgRole.Owner, OrgRole.Admin],
        [ManageMembers] = [OrgRole.Owner, OrgRole.Admin],
        [ManageProviderKeys] = [OrgRole.Owner, OrgRole.Admin],
        [ViewOrgUsage] = [OrgRole.Owner, OrgRole.Admin, OrgRole.Billing],
        [ViewBalance] = [OrgRole.Owner, OrgRole.Admin, OrgRole.Billing],
        [ManageAlerts] = [OrgRole.Owner, OrgRole.Admin, OrgRole.Billing],
        [ManageBilling] = [OrgRole.Owner, OrgRole.Billing],
        [RenameOrganization] = [OrgRole.Owner],
        [DeleteOrTransfer] = [OrgRole.Owner],
    };

    /// <summary>
    /// One request to an organization page: <paramref name="Fields"/> are the form (POST) where <c>{key}</c> stands for a key the
    /// requesting member just created in the team; <paramref name="Served"/> is what an allowed role gets (a redirect must not
    /// go to the login or access-denied page).
    /// </summary>
    public sealed record Endpoint(string Method, string Path, string? Handler, Dictionary<string, string> Fields, OrgPermission Permission,
        HttpStatusCode Served)
    {
        public string Url => Handler is null ? Path : $"{Path}{(Path.Contains('?', StringComparison.Ordinal) ? '&' : '?')}handler={Handler}";
        public override string ToString() => $"{Method} {Url}";
    }

    private static Endpoint Get(string path, OrgPermission permission, HttpStatusCode served = HttpStatusCode.OK, string? handler = null) =>
        new("GET", path, handler, [], permission, served);

    private static Endpoint Post(string path, string? handler, OrgPermission permission, HttpStatusCode served, Dictionary<string, string>? fields = null) =>
        new("POST", path, handler, fields ?? [], permission, served);

    private static readonly string NoSuchId = Guid.NewGuid().ToString();

    /// <summary>Every organization page and handler on this branch. A 404 for an id that exists nowhere still means "let in".</summary>
    public static readonly Endpoint[] Endpoints =
    [
        Get("/dashboard", UseOwnKeys),
        Get("/activity", UseOwnKeys),
        Get("/activity", UseOwnKeys, handler: "Csv"),
        Get("/activity/requests", UseOwnKeys),
        Get("/activity/requests", UseOwnKeys, handler: "Csv"),
        Get("/activity/requests/req-nowhere", UseOwnKeys, HttpStatusCode.NotFound),

        Get("/keys", UseOwnKeys),
        Post("/keys", "Create", UseOwnKeys, HttpStatusCode.Redirect, new() { ["Input.Name"] = "matrix key" }),
        Post("/keys", "Rename", UseOwnKeys, HttpStatusCode.Redirect, new() { ["id"] = "{key}", ["Rename.Name"] = "renamed" }),
        Post("/keys", "Rotate", UseOwnKeys, HttpStatusCode.Redirect, new() { ["id"] = "{key}", ["grace"] = "now" }),
        Post("/keys", "Revoke", UseOwnKeys, HttpStatusCode.Redirect, new() { ["id"] = "{key}" }),

        Get("/keys/providers", ManageProviderKeys),
        // No key pasted: the form comes back with its message (the handler ran, nothing was stored).
        Post("/keys/providers", "Add", ManageProviderKeys, HttpStatusCode.OK, new() { ["Input.Kind"] = "openai", ["Input.Secret"] = "" }),
        Post("/keys/providers", "Delete", ManageProviderKeys, HttpStatusCode.NotFound, new() { ["id"] = NoSuchId }),
        Post("/keys/providers", "Fallback", ManageProviderKeys, HttpStatusCode.NotFound, new() { ["id"] = NoSuchId, ["fallback"] = "true" }),
        Post("/keys/providers", "Test", ManageProviderKeys, HttpStatusCode.NotFound, new() { ["id"] = NoSuchId }),

        Get("/billing", ManageBilling),
        Get("/billing?id=cs_nowhere", ManageBilling, HttpStatusCode.NotFound, handler: "Receipt"),
        // No choice made / no plan / no subscription yet: the page comes back with its error (nothing started at Stripe).
        Post("/billing", "Buy", ManageBilling, HttpStatusCode.OK),
        Post("/billing", "Subscribe", ManageBilling, HttpStatusCode.OK, new() { ["plan"] = "" }),
        Post("/billing", "Manage", ManageBilling, HttpStatusCode.OK),
        Get("/billing/success?session_id=cs_nowhere", ManageBilling, HttpStatusCode.NotFound),
        Get("/billing/test-checkout?session=cs_nowhere", ManageBilling, HttpStatusCode.NotFound),
        Post("/billing/test-checkout?session=cs_nowhere", "Pay", ManageBilling, HttpStatusCode.NotFound),
        Post("/billing/test-checkout?session=cs_nowhere", "Cancel", ManageBilling, HttpStatusCode.NotFound),
        Get("/billing/test-portal", ManageBilling),
        // No subscription to change: back to the portal page.
        Post("/billing/test-portal", "Switch", ManageBilling, HttpStatusCode.Redirect, new() { ["plan"] = "pro" }),
        Post("/billing/test-portal", "Cancel", ManageBilling, HttpStatusCode.Redirect),
        Get("/billing/test-receipt?charge=ch_nowhere", ManageBilling, HttpStatusCode.NotFound),

        // The Team page: every role reads it; each command's own permission. Inputs that change nothing (no address, an
        // id that exists nowhere, a wrong confirmation) still show whether the handler let the role in.
        Get("/organization", UseOwnKeys),
        Post("/organization", "Invite", ManageMembers, HttpStatusCode.Redirect, new() { ["inviteEmail"] = "", ["inviteRole"] = "member" }),
        Post("/organization", "RevokeInvitation", ManageMembers, HttpStatusCode.NotFound, new() { ["id"] = NoSuchId }),
        Post("/organization", "ChangeRole", ManageMembers, HttpStatusCode.NotFound, new() { ["userId"] = NoSuchId, ["role"] = "member" }),
        Post("/organization", "SetLimits", ManageMembers, HttpStatusCode.NotFound, new() { ["userId"] = NoSuchId, ["budgetUsd"] = "10" }),
        Post("/organization", "Remove", ManageMembers, HttpStatusCode.NotFound, new() { ["userId"] = NoSuchId }),
        Post("/organization", "Rename", RenameOrganization, HttpStatusCode.Redirect, new() { ["name"] = "" }),
        Post("/organization", "Transfer", DeleteOrTransfer, HttpStatusCode.Redirect, new() { ["userId"] = NoSuchId }),
        Post("/organization", "Delete", DeleteOrTransfer, HttpStatusCode.Redirect, new() { ["confirmName"] = "not the name" }),

        Get("/Account/Manage/Alerts", ManageAlerts),
        Post("/Account/Manage/Alerts", null, ManageAlerts, HttpStatusCode.Redirect, new()
        {
            ["Input.MonthlyBudgetUsd"] = "500", ["Input.Notify90"] = "true", ["Input.LowBalanceEnabled"] = "false",
        }),
    ];

    public static TheoryData<OrgRole, string> RoleAndEndpoint()
    {
        var data = new TheoryData<OrgRole, string>();
        foreach (var endpoint in Endpoints)
            foreach (var role in Enum.GetValues<OrgRole>())
                data.Add(role, endpoint.ToString());
        return data;
    }

    public static TheoryData<OrgRole, OrgPermission> RoleAndPermission()
    {
        var data = new TheoryData<OrgRole, OrgPermission>();
        foreach (var permission in Enum.GetValues<OrgPermission>())
            foreach (var role in Enum.GetValues<OrgRole>())
                data.Add(role, permission);
        return data;
    }

    [Fact]
    public void The_table_names_every_permission_and_every_row_is_unique()
    {
        Assert.Equal(Enum.GetValues<OrgPermission>().Order(), Matrix.Keys.Order());
        Assert.Equal(Endpoints.Length, Endpoints.Select(e => e.ToString()).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(RoleAndPermission))]
    public void OrgRoles_Allows_is_the_table(OrgRole role, OrgPermission permission) =>
        Assert.Equal(Matrix[permission].Contains(role), OrgRoles.Allows(role, permission));

    [Theory]
    [MemberData(nameof(RoleAndEndpoint))]
    public async Task Each_role_is_served_or_refused_as_the_table_says(OrgRole role, string request)
    {
        var endpoint = Endpoints.Single(e => e.ToString() == request);
        var member = app.Team[role];
        var response = await SendAsync(member, endpoint);

        var where = Teams.RedirectPath(response);
        if (Matrix[endpoint.Permission].Contains(role))
        {
            Assert.True(response.StatusCode == endpoint.Served && where is not ("/Account/AccessDenied" or "/Account/Login"),
                $"{role} {endpoint}: {(int)response.StatusCode} {response.Headers.Location}, expected {(int)endpoint.Served}");
        }
        else
        {
            Assert.True(response.StatusCode == HttpStatusCode.Redirect && where == "/Account/AccessDenied",
                $"{role} {endpoint}: {(int)response.StatusCode} {response.Headers.Location}, expected a redirect to /Account/AccessDenied");
        }
    }

    [Theory]
    [MemberData(nameof(EveryEndpoint))]
    public async Task Signed_out_visitors_are_sent_to_log_in(string request)
    {
        var endpoint = Endpoints.Single(e => e.ToString() == request);
        using var anonymous = app.NewSession();
        var response = endpoint.Method == "GET"
            ? await anonymous.GetAsync(endpoint.Url)
            : await anonymous.Http.PostAsync(endpoint.Url, new FormUrlEncodedContent(endpoint.Fields.Where(f => f.Value != "{key}")));
        Assert.True(response.StatusCode == HttpStatusCode.Redirect && Teams.RedirectPath(response) == "/Account/Login",
            $"{endpoint}: {(int)response.StatusCode} {response.Headers.Location}");
    }

    public static TheoryData<string> EveryEndpoint() => new(Endpoints.Select(e => e.ToString()));

    /// <summary>Requests the endpoint as <paramref name="member"/>; <c>{key}</c> becomes a fresh key of theirs in the team.</summary>
    private async Task<HttpResponseMessage> SendAsync(TeamMember member, Endpoint endpoint)
    {
        if (endpoint.Method == "GET") return await member.Session.GetAsync(endpoint.Url);
        var fields = new Dictionary<string, string>(endpoint.Fields);
        foreach (var (name, value) in endpoint.Fields)
            if (value == "{key}")
                fields[name] = (await app.IssueKeyAsync(app.Team.OrgId, member.UserId, $"{member.Role} key")).Id.ToString();
        return await Teams.PostAsync(member.Session, endpoint.Url, fields);
    }
}

/// <summary>A page that works inside an organization cannot forget to say so.</summary>
public sealed class OrgPageCoverageTests
{
    /// <summary>
    /// Pages outside any organization: sign-in and account pages, the operator's, the public ones, the switcher itself and
    /// the invitation page (a visitor opens it before they belong to the organization it names).
    /// </summary>
    private static readonly string[] ExemptNamespaces = ["AiGate.Web.Pages.Account", "AiGate.Web.Pages.Admin"];
    private static readonly string[] ExemptPages =
    [
        "AiGate.Web.Pages.Pricing.IndexModel", "AiGate.Web.Pages.Status.IndexModel", "AiGate.Web.Pages.ErrorModel",
        "AiGate.Web.Pages.Team.SwitchModel", "AiGate.Web.Pages.Team.InviteModel",
    ];

    private static IEnumerable<Type> PageModels() =>
        typeof(Program).Assembly.GetTypes().Where(t => !t.IsAbstract && typeof(PageModel).IsAssignableFrom(t)
            && t.Namespace?.StartsWith("AiGate.Web.Pages", StringComparison.Ordinal) == true);

    [Fact]
    public void Every_page_model_outside_account_admin_and_public_pages_requires_an_organization()
    {
        var models = PageModels().ToList();
        // The exemptions name real pages (a renamed one would otherwise slip out of the check).
        Assert.All(ExemptPages, name => Assert.Contains(models, t => t.FullName == name));
        Assert.Contains(models, t => t.FullName == "AiGate.Web.Pages.Keys.IndexModel");

        var missing = models
            .Where(t => !ExemptNamespaces.Any(ns => t.Namespace == ns || t.Namespace!.StartsWith(ns + ".", StringComparison.Ordinal)))
            .Where(t => !ExemptPages.Contains(t.FullName))
            .Where(t => t.GetCustomAttributes<RequiresOrgAttribute>(inherit: true).Count() == 0)
            .Select(t => t.FullName).ToList();
        Assert.True(missing.Count == 0, "Without [RequiresOrg]: " + string.Join(", ", missing));
    }

    [Fact]
    public void Every_organization_page_outside_the_authorized_account_folder_demands_a_signed_in_user()
    {
        // The filter only checks roles of a signed-in user: a page that let visitors in would have no organization to work in.
        var open = PageModels()
            .Where(t => t.GetCustomAttributes<RequiresOrgAttribute>(inherit: true).Any())
            .Where(t => t.Namespace != "AiGate.Web.Pages.Account.Manage")   // AuthorizeFolder("/Account/Manage")
            .Where(t => t.GetCustomAttribute<AuthorizeAttribute>(inherit: true) is null)
            .Select(t => t.FullName).ToList();
        Assert.True(open.Count == 0, "[RequiresOrg] without [Authorize]: " + string.Join(", ", open));
    }
}
