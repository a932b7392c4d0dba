using AiGate.Web.Data;
using AiGate.Web.Data.Migrations;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Alerts;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Byok;
using AiGate.Web.Features.Admin;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Demo;
using AiGate.Web.Features.Email;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Jobs;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.ProviderHealth;
using AiGate.Web.Features.Providers;
using AiGate.Web.Features.Usage;
using AiGate.Web.Features.Vault;
using AiGate.Web.Infrastructure;
using AiGate.Web.Infrastructure.Cli;
using AiGate.Web.Infrastructure.Telemetry;

// `dotnet AiGate.Web.dll <verb> [options]` runs one operational verb and exits; anything else serves HTTP.
var isVerb = CommandLine.IsVerb(args);
var builder = WebApplication.CreateBuilder(isVerb ? [] : args);
if (isVerb) builder.Configuration[$"{JobsOptions.Section}:{nameof(JobsOptions.SchedulerEnabled)}"] = "false";

WebApplication app;
try
{
    builder.AddInfrastructure();
    builder.AddTelemetry();
    builder.AddData();
    builder.AddVault();
    builder.AddJobs();
    builder.AddAccounts();
    builder.AddEmail();
    builder.AddOrganizations();
    builder.AddKeys();
    builder.AddCredits();
    builder.AddGateway();
    builder.AddProviderKeys();
    builder.AddByok();
    builder.AddProviderHealth();
    builder.AddDemo();
    builder.AddUsage();
    builder.AddAlerts();
    builder.AddBilling();
    builder.AddAdmin();
    builder.Services.AddRazorPages();
    app = builder.Build();
    // What the host would check as it starts (ValidateOnStart), checked here so a bad setting stops with its reason.
    app.Services.GetService<Microsoft.Extensions.Options.IStartupValidator>()?.Validate();
    if (!isVerb) await VaultExtensions.CheckAtStartAsync(app.Services, app.Environment, app.Logger);

    if (isVerb)
        return await CommandLine.RunAsync(app.Services, args, Console.Out, Console.Error, CancellationToken.None);

    app.UseInfrastructure();
    app.UseGatewayWebSockets();   // the upgrade of /api/v1/realtime
    app.MapUsage();     // /api/v1/balance, /api/v1/usage
    app.MapGateway();   // the rest of /api/v1, its 404 catch-all last
    app.MapEmail();
    app.MapBilling();   // POST /webhooks/stripe
    app.MapJobsDashboard();   // /admin/hangfire
    app.MapRazorPages();
}
catch (StartupConfigurationException ex)
{
    // Bad configuration stops the deploy with its reason, not with a stack trace.
    await Console.Error.WriteLineAsync($"error: {ex.Message}");
    return 1;
}
catch (Microsoft.Extensions.Options.OptionsValidationException ex)
{
    await Console.Error.WriteLineAsync($"error: invalid configuration: {ex.Message}");
    return 1;
}

if (app.Environment.IsDevelopment())
{
    // Local runs: migrate and seed at start. Production migrates in the release step and has no demo data.
    await app.Services.GetRequiredService<SchemaMigrator>().ApplyAsync(CancellationToken.None);
    await DemoSeeder.SeedAsync(app.Services, CancellationToken.None);
    DemoSeeder.LogDemoAccounts(app.Logger, DemoSeeder.AdminEmail, DemoSeeder.AdminPassword, DemoSeeder.UserEmail, DemoSeeder.UserPassword);
}

await app.RunAsync();
return 0;
