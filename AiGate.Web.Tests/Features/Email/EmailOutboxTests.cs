using AiGate.Web.Data;
using AiGate.Web.Features.Email;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Email;

/// <summary>The app with Resend configured against <see cref="FakeResend"/>.</summary>
public sealed class ResendApp : AccountsApp
{
    public FakeResend Resend { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Resend = await FakeResend.StartAsync();
        await base.InitializeAsync();
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Resend:ApiKey"] = FakeResend.ApiKey,
        ["Resend:ApiBase"] = Resend.BaseUrl.ToString(),
        ["Email:From"] = "AiGate <no-reply@aigate.test>",
        ["Email:MaxAttempts"] = "3",
    };

    public async Task<Guid> EnqueueAsync(string to)
    {
        await using var scope = Services.CreateAsyncScope();
        var row = scope.ServiceProvider.GetRequiredService<EmailOutbox>().Enqueue(to, EmailTemplates.TwoFactorEnabled(), null);
        await scope.ServiceProvider.GetRequiredService<AppDbContext>().SaveChangesAsync();
        return row.Id;
    }

    public async Task<OutboxEmail> RowAsync(Guid id)
    {
        await using var scope = Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().EmailOutbox.AsNoTracking().SingleAsync(e => e.Id == id);
    }

    /// <summary>Makes a row due now (skips the backoff wait).</summary>
    public Task MakeDueAsync(Guid id) => Database.ExecuteAsync($"update email_outbox set next_attempt_at = now() - interval '1 second' where id = '{id}'");
}

public sealed class EmailOutboxTests(ResendApp app) : IClassFixture<ResendApp>
{
    [Fact]
    public async Task Sends_through_Resend_with_bearer_auth_and_the_row_id_as_idempotency_key()
    {
        var id = await app.EnqueueAsync("send@example.com");

        await app.SendOutboxAsync();

        var row = await app.RowAsync(id);
        Assert.Equal(OutboxStatus.Sent, row.Status);
        Assert.Equal(1, row.Attempts);
        Assert.NotNull(row.ProviderMessageId);
        var request = Assert.Single(app.Resend.Requests, r => r.Headers["Idempotency-Key"] == id.ToString());
        Assert.Equal("POST", request.Method);
        Assert.Equal("/emails", request.PathAndQuery);
        Assert.Equal($"Bearer {FakeResend.ApiKey}", request.Headers["Authorization"]);
        Assert.False(string.IsNullOrEmpty(request.Headers["User-Agent"]));
        var body = app.Resend.Delivered[id.ToString()];
        Assert.Equal("AiGate <no-reply@aigate.test>", body.GetProperty("from").GetString());
        Assert.Equal("send@example.com", body.GetProperty("to")[0].GetString());
        Assert.Contains("Two-factor", body.GetProperty("subject").GetString(), StringComparison.Ordinal);
        Assert.Contains("<html", body.GetProperty("html").GetString(), StringComparison.Ordinal);
        Assert.Contains("AiGate", body.GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rate_limit_and_server_errors_are_retried_with_backoff_then_given_up()
    {
        app.Resend.NextStatuses.Enqueue(429);
        var id = await app.EnqueueAsync("retry@example.com");

        await app.SendOutboxAsync();
        var afterRateLimit = await app.RowAsync(id);
        Assert.Equal(OutboxStatus.Pending, afterRateLimit.Status);
        Assert.StartsWith("429 rate_limit_exceeded", afterRateLimit.LastError, StringComparison.Ordinal);
        Assert.True(afterRateLimit.NextAttemptAt > DateTimeOffset.UtcNow.AddSeconds(20), "backoff of at least 30 s (and the Retry-After)");
        Assert.Equal(0, await app.SendOutboxAsync());   // not due yet

        app.Resend.NextStatuses.Enqueue(500);
        app.Resend.NextStatuses.Enqueue(503);
        await app.MakeDueAsync(id);
        await app.SendOutboxAsync();
        Assert.Equal(OutboxStatus.Pending, (await app.RowAsync(id)).Status);
        await app.MakeDueAsync(id);
        await app.SendOutboxAsync();

        var failed = await app.RowAsync(id);
        Assert.Equal(OutboxStatus.Failed, failed.Status);   // MaxAttempts = 3 in this fixture
        Assert.Equal(3, failed.Attempts);
        Assert.StartsWith("503 application_error", failed.LastError, StringComparison.Ordinal);
        Assert.Equal(3, app.Resend.Requests.Count(r => r.Headers["Idempotency-Key"] == id.ToString()));
    }

    [Fact]
    public async Task A_message_Resend_rejects_is_failed_at_once()
    {
        app.Resend.NextStatuses.Enqueue(422);
        var id = await app.EnqueueAsync("rejected@example.com");

        await app.SendOutboxAsync();

        var row = await app.RowAsync(id);
        Assert.Equal(OutboxStatus.Failed, row.Status);
        Assert.Equal(1, row.Attempts);
        Assert.Equal("422 invalid_parameter: Invalid `to` field.", row.LastError);
    }

    [Fact]
    public async Task Two_instances_sending_together_send_each_row_once()
    {
        var ids = new List<Guid>();
        for (var i = 0; i < 30; i++) ids.Add(await app.EnqueueAsync($"bulk{i}@example.com"));
        app.Resend.Delay = TimeSpan.FromMilliseconds(20);
        try
        {
            // Two senders with their own connections, as two machines would run the job.
            await Task.WhenAll(app.SendOutboxAsync(), app.SendOutboxAsync(), app.SendOutboxAsync());
        }
        finally
        {
            app.Resend.Delay = TimeSpan.Zero;
        }

        foreach (var id in ids)
        {
            Assert.Equal(OutboxStatus.Sent, (await app.RowAsync(id)).Status);
            Assert.Single(app.Resend.Requests, r => r.Headers.TryGetValue("Idempotency-Key", out var k) && k == id.ToString());
        }
    }

    [Fact]
    public async Task Enqueued_mail_rolls_back_with_its_transaction()
    {
        Guid id;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            await using var transaction = await db.Database.BeginTransactionAsync();
            id = scope.ServiceProvider.GetRequiredService<EmailOutbox>().Enqueue("rollback@example.com", EmailTemplates.TwoFactorDisabled(), null).Id;
            await db.SaveChangesAsync();
            await transaction.RollbackAsync();
        }
        Assert.Equal(0L, await app.Database.ScalarAsync<long>($"select count(*) from email_outbox where id = '{id}'"));
    }

    [Fact]
    public async Task Admin_preview_masks_the_tokens_in_links()
    {
        await app.CreateUserAsync("admin-preview@example.com", "password123", admin: true);
        await app.CreateUserAsync("victim@example.com", "password123");
        using var session = app.NewSession();
        await session.SubmitAsync("/Account/ForgotPassword", new() { ["Input.Email"] = "victim@example.com" });
        await session.LogInAsync("admin-preview@example.com", "password123");
        var mail = (await app.MailToAsync("victim@example.com")).Last();

        var page = await session.TextAsync($"/Admin/Outbox?id={mail.Id}");
        var html = await session.TextAsync($"/admin/email/{mail.Id}/html");

        Assert.Contains("code=hidden", page, StringComparison.Ordinal);
        Assert.Contains("code=hidden", html, StringComparison.Ordinal);
        var code = System.Text.RegularExpressions.Regex.Match(mail.TextBody, "code=([^&\\s]+)").Groups[1].Value;
        Assert.DoesNotContain(code, page, StringComparison.Ordinal);
        Assert.DoesNotContain(code, html, StringComparison.Ordinal);
    }
}

/// <summary>Resend refusing our key: kept for retry (an operator can fix the key), and the key never lands in the row.</summary>
public sealed class ResendWrongKeyApp : AccountsApp
{
    public FakeResend Resend { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Resend = await FakeResend.StartAsync();
        await base.InitializeAsync();
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Resend:ApiKey"] = "re_wrong_key",
        ["Resend:ApiBase"] = Resend.BaseUrl.ToString(),
    };
}

public sealed class ResendWrongKeyTests(ResendWrongKeyApp app) : IClassFixture<ResendWrongKeyApp>
{
    [Fact]
    public async Task An_invalid_key_is_recorded_and_retried_later()
    {
        await using (var scope = app.Services.CreateAsyncScope())
        {
            scope.ServiceProvider.GetRequiredService<EmailOutbox>().Enqueue("key@example.com", EmailTemplates.TwoFactorEnabled(), null);
            await scope.ServiceProvider.GetRequiredService<AppDbContext>().SaveChangesAsync();
        }

        await app.SendOutboxAsync();

        var row = Assert.Single(await app.MailToAsync("key@example.com"));
        Assert.Equal(OutboxStatus.Pending, row.Status);
        Assert.Equal("403 invalid_api_key: API key is invalid.", row.LastError);
        Assert.DoesNotContain("re_wrong_key", row.LastError, StringComparison.Ordinal);
    }
}
