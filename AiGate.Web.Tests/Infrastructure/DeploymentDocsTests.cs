using System.Security.Cryptography;
using System.Text.RegularExpressions;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.InfrastructureTests;

/// <summary>
/// The deployment guide is followed literally on a first deploy, so it is tested that way: the secrets its table
/// marks "always" must be enough for the release step (<c>migrate</c> in Production, the built app as a process) to
/// succeed, the README's configuration table must name them too, and every name it lists must be one the app reads
/// unless the row says it is not read yet.
/// </summary>
public sealed partial class DeploymentDocsTests
{
    /// <summary>A value of the documented form for each name (generated as the guide says where it says how).</summary>
    private static string SampleValue(string name, string connectionString) => name switch
    {
        "ConnectionStrings__Default" => connectionString,
        "Stripe__SecretKey" => "sk_live_docs_test",
        "Stripe__WebhookSecret" => "whsec_docs_test",
        "Resend__ApiKey" => "re_docs_test",
        "Email__From" => "AiGate <noreply@example.com>",
        "Email__BaseUrl" => "https://my-aigate.fly.dev",
        "Keys__Pepper" => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),   // openssl rand -base64 32
        _ => throw new Xunit.Sdk.XunitException($"docs/deployment.md requires {name}: give this test a sample value of the documented form"),
    };

    [Fact]
    public async Task The_secrets_the_deployment_guide_requires_are_enough_for_the_Production_release_step()
    {
        await using var database = await TestDatabase.CreateEmptyAsync();
        var required = SecretsTable().Where(r => r.Needed.StartsWith("always", StringComparison.Ordinal)).Select(r => r.Name).ToList();
        var environment = required.ToDictionary(n => n, n => (string?)SampleValue(n, database.ConnectionString));
        environment["ASPNETCORE_ENVIRONMENT"] = "Production";

        var (code, stdout, stderr) = await RepoPaths.RunAsync("dotnet", [RepoPaths.WebDll, "migrate"], environment);

        Assert.True(code == 0, $"the release step failed with only {string.Join(", ", required)} set:\n{stdout}\n{stderr}");
    }

    [Fact]
    public void The_README_names_every_setting_the_deployment_guide_requires()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        foreach (var row in SecretsTable().Where(r => r.Needed.StartsWith("always", StringComparison.Ordinal)))
            Assert.Contains($"`{row.Name}`", readme, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_setting_the_deployment_guide_lists_is_read_by_the_app_unless_it_says_it_is_not_yet()
    {
        var source = string.Join('\n', Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, "AiGate.Web"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText));
        foreach (var row in SecretsTable().Where(r => !r.Name.Contains('<') && !r.What.Contains("not read yet", StringComparison.OrdinalIgnoreCase)))
        {
            // Options classes bind "Section" and "Property": both names appear in the app's source.
            foreach (var part in row.Name.Split("__"))
                Assert.True(Regex.IsMatch(source, $@"\b{Regex.Escape(part)}\b"), $"docs/deployment.md lists {row.Name}, but nothing in AiGate.Web reads '{part}'");
        }
    }

    private sealed record SecretRow(string Name, string Needed, string What);

    /// <summary>The rows of the "| Name | Needed | What for |" table in docs/deployment.md.</summary>
    private static List<SecretRow> SecretsTable()
    {
        var lines = File.ReadAllLines(Path.Combine(RepoPaths.Root, "docs", "deployment.md"));
        var start = Array.FindIndex(lines, l => l.StartsWith("| Name | Needed | What for |", StringComparison.Ordinal));
        Assert.True(start >= 0, "docs/deployment.md has no secrets table");
        var rows = new List<SecretRow>();
        for (var i = start + 2; i < lines.Length && lines[i].StartsWith('|'); i++)
        {
            var cells = lines[i].Split('|', StringSplitOptions.TrimEntries)[1..^1];
            foreach (Match name in Backticked().Matches(cells[0]))
                rows.Add(new SecretRow(name.Groups[1].Value, cells[1], cells[2]));
        }
        return rows;
    }

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();
}
