using AiGate.Web.Features.Billing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>
/// The dunning sequence after <c>invoice.payment_failed</c>: e-mails on day 0, 3 and 7 through the outbox with
/// the billing link, nothing more once the invoice is paid, the free plan (balance kept) after the last step,
/// and never a step twice when two runs race.
/// </summary>
public sealed class DunningTests(BillingApp app) : IClassFixture<BillingApp>
{
    private async Task<int> RunAsync(DateTimeOffset at)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await ActivatorUtilities.CreateInstance<DunningJob>(scope.ServiceProvider).RunDueAsync(at, CancellationToken.None);
    }

    private async Task<(Guid UserId, string Email, string Customer, string Subscription)> SubscribedAsync()
    {
        var email = $"dun-{Guid.NewGuid():N}@example.com";
        var user = await app.CreateUserAsync(email, "password123");
        var customer = await app.LinkCustomerAsync(user.Id);
        var sub = "sub_" + Guid.NewGuid().ToString("N")[..12];
        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, sub, "starter", 1000)));
        return (user.Id, email, customer, sub);
    }

    private async Task<List<string>> KindsAsync(string email) => (await app.MailToAsync(email)).Select(m => m.Kind).ToList();

    [Fact]
    public async Task A_failed_payment_gets_reminders_on_day_0_3_and_7_then_the_free_plan_with_the_balance_kept()
    {
        var (userId, email, customer, sub) = await SubscribedAsync();
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0)));
        var start = DateTimeOffset.UtcNow.AddSeconds(1);

        await RunAsync(start);
        Assert.Equal(["payment-failed-1"], await KindsAsync(email));
        var first = (await app.MailToAsync(email))[0];
        Assert.Contains("/billing", first.TextBody, StringComparison.Ordinal);
        Assert.Contains("Starter", first.Subject, StringComparison.Ordinal);

        await RunAsync(start.AddDays(2));   // nothing due yet
        Assert.Single(await KindsAsync(email));

        await RunAsync(start.AddDays(3));
        Assert.Equal(["payment-failed-1", "payment-failed-2"], await KindsAsync(email));
        Assert.Equal("starter", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{userId}'"));

        await RunAsync(start.AddDays(7));
        Assert.Equal(["payment-failed-1", "payment-failed-2", "plan-ended-unpaid"], await KindsAsync(email));
        Assert.Equal("free", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{userId}'"));
        Assert.Equal(10_000_000, await app.BalanceAsync(userId));   // the allowance already granted stays

        await RunAsync(start.AddDays(30));   // the sequence is over
        Assert.Equal(3, (await KindsAsync(email)).Count);
    }

    [Fact]
    public async Task Paying_the_invoice_stops_the_sequence()
    {
        var (userId, email, customer, sub) = await SubscribedAsync();
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0)));
        var start = DateTimeOffset.UtcNow.AddSeconds(1);
        await RunAsync(start);

        await app.DeliverAsync(BillingApp.Event("invoice.paid", BillingApp.Invoice(customer, sub, "starter", 1000), DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 5));
        await RunAsync(start.AddDays(3));
        await RunAsync(start.AddDays(7));

        Assert.Equal(["payment-failed-1"], await KindsAsync(email));
        Assert.Equal("starter", await app.Database.ScalarAsync<string>($"select plan_id from billing_accounts where user_id = '{userId}'"));
    }

    [Fact]
    public async Task Racing_runs_send_each_step_once()
    {
        var (_, email, customer, sub) = await SubscribedAsync();
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0)));
        // A second failed attempt in the same episode does not restart the sequence.
        await app.DeliverAsync(BillingApp.Event("invoice.payment_failed", BillingApp.Invoice(customer, sub, "starter", 0)));
        var at = DateTimeOffset.UtcNow.AddSeconds(1);

        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => RunAsync(at)));

        Assert.Equal(["payment-failed-1"], await KindsAsync(email));
    }
}
