using System.Net;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Organizations;

/// <summary>Every new user gets a personal organization with their own id, whatever their e-mail looks like (issue 17).</summary>
public sealed class PersonalOrganizationTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Signing_up_with_an_address_longer_than_an_organization_name_works_and_names_the_organization_after_it()
    {
        // Valid for sign-up (at most 256 characters), longer than the 100 an organization's name may have.
        var email = new string('r', 60) + "@" + string.Join('.', Enumerable.Repeat("longdomainlabel", 8)) + ".test";
        Assert.InRange(email.Length, 101, 256);

        using var session = await app.RegisterConfirmAndLogInAsync(email, "a long enough passphrase");

        Assert.Equal(HttpStatusCode.OK, (await session.GetAsync("/keys")).StatusCode);
        var userId = (await app.FindUserAsync(email))!.Id;
        Assert.Equal(email[..100], await app.Database.ScalarAsync<string>(
            $"select o.name from organizations o join organization_members m on m.org_id = o.id and m.user_id = o.id and m.role = 'owner' where o.id = '{userId}' and o.personal"));
    }
}
