using AiGate.Web.Data.Migrations;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Data;

/// <summary>The real binary's <c>migrate</c> verb, as Fly's release step and two instances starting together run it.</summary>
public sealed class MigrateVerbTests
{
    /// <summary>What Production needs besides the database (the binary runs as it would in the release step): the key pepper, e-mail through Resend, Stripe's secrets.</summary>
    private static readonly string Pepper = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private static Dictionary<string, string?> ProductionEnv(string? connectionString) => new()
    {
        ["ConnectionStrings__Default"] = connectionString,
        ["Keys__Pepper"] = Pepper,
        ["Resend__ApiKey"] = "re_test_not_used",
        ["Email__From"] = "AiGate <no-reply@aigate.test>",
        ["Email__BaseUrl"] = "https://aigate.test",
        ["Stripe__SecretKey"] = "sk_test_not_used",
        ["Stripe__WebhookSecret"] = "whsec_not_used",
    };

    [Fact]
    public async Task Two_concurrent_migrate_runs_both_succeed_and_apply_each_migration_once()
    {
        await using var database = await TestDatabase.CreateEmptyAsync();
        var env = ProductionEnv(database.ConnectionString);

        var runs = await Task.WhenAll(
            RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"], env),
            RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"], env));

        foreach (var run in runs) Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.StdErr}");
        // One of them applied everything; the other waited on the lock and found nothing to do.
        Assert.Single(runs, r => r.StdOut.Contains($"applied {MigrationCatalog.All.Count} migration(s)", StringComparison.Ordinal));
        Assert.Single(runs, r => r.StdOut.Contains("database is up to date", StringComparison.Ordinal));
        Assert.Equal(MigrationCatalog.All.Count, await database.ScalarAsync<long>("select count(*) from schema_migrations"));
        Assert.Equal(MigrationCatalog.All.Count, await database.ScalarAsync<long>("select count(distinct version) from schema_migrations"));
    }

    [Fact]
    public async Task Migrate_without_a_connection_string_fails_with_a_clear_message()
    {
        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"],
            ProductionEnv(null));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("ConnectionStrings:Default is not set", run.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StdErr, StringComparison.Ordinal);   // no stack trace
    }

    [Fact]
    public async Task Migrate_against_an_unreachable_database_exits_non_zero_without_a_stack_trace()
    {
        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"],
            ProductionEnv("Host=127.0.0.1;Port=1;Username=nobody;Database=none;Timeout=2"));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("error: migrate failed", run.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Production_refuses_to_start_without_Resend()
    {
        var env = ProductionEnv("Host=127.0.0.1;Database=x");
        env["Resend__ApiKey"] = null;

        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"], env);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("set Resend__ApiKey", run.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StdErr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Stripe__SecretKey")]
    [InlineData("Stripe__WebhookSecret")]
    public async Task Production_refuses_to_start_without_Stripe_secrets_so_never_runs_the_local_test_checkout(string missing)
    {
        var env = ProductionEnv("Host=127.0.0.1;Database=x");
        env[missing] = null;

        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"], env);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("set Stripe__SecretKey and Stripe__WebhookSecret", run.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StdErr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("c2hvcnQ=")]   // "short": 5 bytes
    public async Task Production_refuses_to_start_without_a_strong_key_pepper(string? pepper)
    {
        var env = ProductionEnv("Host=127.0.0.1;Database=x");
        env["Keys__Pepper"] = pepper;
        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"], env);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Keys__Pepper must be set", run.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Production_refuses_the_echo_provider()
    {
        await using var database = await TestDatabase.CreateMigratedAsync();
        var env = ProductionEnv(database.ConnectionString);
        env["Providers__local__Kind"] = "echo";
        var run = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "--urls", "http://127.0.0.1:0"], env, TimeSpan.FromSeconds(60));

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("echo provider, which is for development only", run.StdErr, StringComparison.Ordinal);
    }
}
