using AiGate.Web.Features.Email;
using AiGate.Web.Infrastructure;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.Features.Email;

public sealed class LocalMailboxTests(AccountsApp app) : IClassFixture<AccountsApp>
{
    [Fact]
    public async Task Without_a_Resend_key_mail_is_delivered_locally()
    {
        using var session = app.NewSession();
        await session.SubmitAsync("/Account/Register", new() { ["Input.Email"] = "local@example.com", ["Input.Password"] = "password123", ["Input.ConfirmPassword"] = "password123" });

        await app.SendOutboxAsync();

        var row = Assert.Single(await app.MailToAsync("local@example.com"));
        Assert.Equal(OutboxStatus.DeliveredLocally, row.Status);
        Assert.NotNull(row.SentAt);
    }

    [Fact]
    public void Production_refuses_to_start_without_Resend()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateBuilder(new Microsoft.AspNetCore.Builder.WebApplicationOptions { EnvironmentName = "Production" });

        var error = Assert.Throws<StartupConfigurationException>(() => builder.AddEmail());

        Assert.Contains("Resend__ApiKey", error.Message, StringComparison.Ordinal);
        Assert.Contains("Email__BaseUrl", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Production_with_Resend_configured_never_uses_the_local_mailbox()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateBuilder(new Microsoft.AspNetCore.Builder.WebApplicationOptions { EnvironmentName = "Production" });
        builder.Configuration["Resend:ApiKey"] = "re_x";
        builder.Configuration["Email:From"] = "AiGate <a@b.c>";
        builder.Configuration["Email:BaseUrl"] = "https://aigate.example";

        builder.AddEmail();

        Assert.DoesNotContain(builder.Services, d => d.ImplementationType == typeof(LocalMailboxSender));
        Assert.Contains(builder.Services, d => d.ServiceType == typeof(IEmailSender));
    }
}
