using AiGate.Web.Infrastructure.Cli;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.InfrastructureTests;

/// <summary>The verb runner, against the app's real service container.</summary>
public sealed class CommandLineTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    [Fact]
    public async Task Unknown_verb_prints_usage_and_exits_2()
    {
        var (code, stdout, stderr) = await RunAsync("frobnicate");
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains("unknown verb 'frobnicate'", stderr, StringComparison.Ordinal);
        Assert.Contains("migrate", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_option_prints_the_verbs_usage_and_exits_2()
    {
        var (code, _, stderr) = await RunAsync("migrate", "--force");
        Assert.Equal(2, code);
        Assert.Contains("unknown option '--force'", stderr, StringComparison.Ordinal);
        Assert.Contains("usage: migrate", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_every_verb()
    {
        var (code, stdout, _) = await RunAsync("help");
        Assert.Equal(0, code);
        Assert.Contains("migrate", stdout, StringComparison.Ordinal);
        Assert.Contains("model-sql", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrate_on_a_current_database_says_it_is_up_to_date()
    {
        var (code, stdout, _) = await RunAsync("migrate");
        Assert.Equal(0, code);
        Assert.Contains("database is up to date", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_are_parsed_and_checked()
    {
        var verb = new CliVerb("demo", "test verb", [new CliOption("email", "e-mail", Required: true), new CliOption("admin", "flag", IsFlag: true)],
            static async context =>
            {
                await context.Out.WriteAsync($"{context.Get("email")}|{context.Flag("admin")}");
                return 0;
            });
        using var services = new ServiceCollection().AddCliVerb(verb).BuildServiceProvider();

        Assert.Equal((0, "a@b.c|True"), await RunOnAsync(services, "demo", "--email", "a@b.c", "--admin"));
        Assert.Equal((0, "a@b.c|False"), await RunOnAsync(services, "demo", "--email", "a@b.c"));
        Assert.Equal(2, (await RunOnAsync(services, "demo")).Code);                         // missing required
        Assert.Equal(2, (await RunOnAsync(services, "demo", "--email")).Code);              // missing value
        Assert.Equal(2, (await RunOnAsync(services, "demo", "--email", "x", "--email", "y")).Code);
        Assert.Equal(2, (await RunOnAsync(services, "demo", "stray")).Code);
    }

    private async Task<(int Code, string StdOut, string StdErr)> RunAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CommandLine.RunAsync(app.Services, args, stdout, stderr, CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static async Task<(int Code, string StdOut)> RunOnAsync(IServiceProvider services, params string[] args)
    {
        var stdout = new StringWriter();
        var code = await CommandLine.RunAsync(services, args, stdout, TextWriter.Null, CancellationToken.None);
        return (code, stdout.ToString());
    }
}

/// <summary>Demo data: idempotent, with the demo user's credit granted once.</summary>
public sealed class SeedDemoTests(AiGateApp app) : IClassFixture<AiGateApp>
{
    [Fact]
    public async Task Seed_demo_twice_creates_the_admin_and_the_user_once_with_credit_once()
    {
        for (var i = 0; i < 2; i++)
            Assert.Equal(0, await CommandLine.RunAsync(app.Services, ["seed-demo"], TextWriter.Null, TextWriter.Null, CancellationToken.None));

        Assert.Equal(2, await app.Database.ScalarAsync<long>("select count(*) from users where email in ('admin@aigate.local', 'demo@aigate.local')"));
        Assert.Equal(1, await app.Database.ScalarAsync<long>(
            "select count(*) from user_roles ur join roles r on r.id = ur.role_id join users u on u.id = ur.user_id where u.email = 'admin@aigate.local' and r.name = 'admin'"));
        Assert.Equal(5_000_000, await app.Database.ScalarAsync<long>(
            "select balance_micros from credit_accounts a join users u on u.id = a.user_id where u.email = 'demo@aigate.local'"));
    }
}
