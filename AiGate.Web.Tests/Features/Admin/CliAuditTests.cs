using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Admin;

/// <summary>
/// CLI verbs that change money or access write an audit row (actor <c>cli</c>, no request id) in the transaction of
/// their change: the built binary runs each verb against the fixture's database, as an operator's shell would.
/// </summary>
public sealed class CliAuditTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    private Dictionary<string, string?> Env => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Testing",
        ["DOTNET_ENVIRONMENT"] = "Testing",
        ["ConnectionStrings__Default"] = app.Database.ConnectionString,
        ["Jobs__SchedulerEnabled"] = "false",
    };

    private async Task<string> RunAsync(params string[] args)
    {
        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, .. args], Env);
        Assert.True(run.ExitCode == 0, $"{args[0]} exited {run.ExitCode}: {run.StdErr}{run.StdOut}");
        return run.StdOut;
    }

    [Fact]
    public async Task Create_user_grant_credits_and_create_key_each_write_an_audit_row_as_cli()
    {
        var email = $"ops-{Guid.NewGuid():N}@example.test";
        await RunAsync("create-user", "--email", email, "--password", "a long enough passphrase", "--admin");
        var userId = await app.Database.ScalarAsync<Guid>($"select id from users where email = '{email}'");
        Assert.Equal($"user.create|cli||{{\"email\":\"{email}\",\"emailConfirmed\":true,\"admin\":true}}", await AuditAsync($"user:{userId}"));

        await RunAsync("grant-credits", "--email", email, "--usd", "2.50", "--reason", "launch promotion");
        Assert.Equal("credit.grant|cli|launch promotion|{\"balanceMicros\":2500000,\"heldMicros\":0,\"availableMicros\":2500000}", await AuditAsync($"user:{userId}"));
        // The verb settles refused usage (UsageDeadLetters), so unlike the admin page it may leave debt.
        await RunAsync("grant-credits", "--email", email, "--usd", "-4", "--reason", "settle dead letter 17");
        Assert.Equal("credit.deduct|cli|settle dead letter 17|{\"balanceMicros\":-1500000,\"heldMicros\":0,\"availableMicros\":-1500000}", await AuditAsync($"user:{userId}"));
        Assert.Equal(-1_500_000, await app.Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{userId}'"));

        var secret = (await RunAsync("create-key", "--email", email, "--name", "ci")).Trim();
        var keyId = await app.Database.ScalarAsync<Guid>($"select id from api_keys where owner_id = '{userId}'");
        var keyAudit = await AuditAsync($"key:{keyId}");
        Assert.StartsWith("key.create|cli||{\"name\":\"ci\",\"prefix\":\"", keyAudit, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, keyAudit, StringComparison.Ordinal);   // the secret is printed once, never stored
        Assert.Equal(0, await app.Database.ScalarAsync<long>("select count(*) from audit_log where actor = 'cli' and request_id is not null"));
    }

    [Fact]
    public async Task Seeding_the_demo_accounts_is_audited()
    {
        await RunAsync("seed-demo");

        Assert.Equal("demo.seed|cli||{\"admin\":\"admin@aigate.local\",\"user\":\"demo@aigate.local\",\"creditMicros\":5000000}",
            await AuditAsync("demo:accounts"));
    }

    [Fact]
    public async Task A_verb_that_fails_writes_no_audit_row()
    {
        var email = $"dup-{Guid.NewGuid():N}@example.test";
        await RunAsync("create-user", "--email", email, "--password", "a long enough passphrase");
        var before = await app.Database.ScalarAsync<long>("select count(*) from audit_log");

        var duplicate = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "create-user", "--email", email, "--password", "a long enough passphrase"], Env);
        var weak = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "create-user", "--email", "weak-" + email, "--password", "short"], Env);

        Assert.NotEqual(0, duplicate.ExitCode);
        Assert.NotEqual(0, weak.ExitCode);
        Assert.Equal(before, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from users where email = 'weak-{email}'"));
    }

    /// <summary>The newest audit row on a target: action|actor|reason|after.</summary>
    private Task<string?> AuditAsync(string target) => app.Database.ScalarAsync<string>(
        $"select concat_ws('|', action, actor, coalesce(reason, ''), after_value) from audit_log where target = '{target}' order by id desc limit 1");
}
