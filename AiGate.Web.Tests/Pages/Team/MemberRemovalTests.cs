using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Team;

/// <summary>Removing a member from the team page ends their keys on every instance within seconds (issue 17, RELIABILITY K5).</summary>
public sealed class MemberRemovalTests(AccountsApp app) : IClassFixture<AccountsApp>, IAsyncLifetime
{
    private WebApplicationFactory<Program> _other = null!;

    public Task InitializeAsync()
    {
        // A second instance of the app on the same database, with its own key cache and notice listener.
        _other = SecondInstance.WithEcho(app.Database.ConnectionString);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _other.DisposeAsync();

    [Fact]
    public async Task A_removed_members_key_is_refused_by_a_second_instance_within_five_seconds()
    {
        var (ownerId, _, owner) = await app.UserAsync("owner");
        var (memberId, _, _) = await app.UserAsync("member");
        await app.AddMemberAsync(ownerId, memberId, OrgRole.Member, makeCurrent: true);
        string secret;
        await using (var scope = app.Services.CreateAsyncScope())
            (_, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssueAsync(ownerId, memberId, "member key", new KeyLimits(), CancellationToken.None);
        using var onB = _other.CreateClient();
        onB.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("/api/v1/models")).StatusCode);   // now cached on B

        var removed = await owner.PostAsync("Remove", new() { ["userId"] = memberId.ToString() });
        var since = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.Redirect, removed.StatusCode);

        HttpStatusCode status;
        while ((status = (await onB.GetAsync("/api/v1/models")).StatusCode) == HttpStatusCode.OK && since.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.True(since.Elapsed < TimeSpan.FromSeconds(5), $"instance B accepted the removed member's key for {since.Elapsed.TotalMilliseconds:0} ms");
        Assert.Null(await app.MemberAsync(ownerId, memberId));
    }
}
