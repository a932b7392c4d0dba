using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using AiGate.Web.Infrastructure;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>Billing in local mode with a free plan of 4 requests a minute and usage tiers at $5 (40) and $50 (400).</summary>
public sealed class TieredBillingApp : BillingApp
{
    public static readonly Dictionary<string, string?> Tiers = new()
    {
        ["Billing:Plans:0:RequestsPerMinute"] = "4",
        ["Billing:Plans:0:TokensPerMinute"] = "100000",
        ["Billing:UsageTiers:0:MinPaidCents"] = "500",
        ["Billing:UsageTiers:0:RequestsPerMinute"] = "40",
        ["Billing:UsageTiers:0:TokensPerMinute"] = "400000",
        ["Billing:UsageTiers:1:MinPaidCents"] = "5000",
        ["Billing:UsageTiers:1:RequestsPerMinute"] = "400",
        ["Billing:UsageTiers:1:TokensPerMinute"] = "4000000",
        ["Billing:UsageTiers:2:MinPaidCents"] = "50000",
        ["Billing:UsageTiers:2:RequestsPerMinute"] = "4000",
        ["Billing:UsageTiers:2:TokensPerMinute"] = "40000000",
    };

    protected override IReadOnlyDictionary<string, string?> Settings
    {
        get
        {
            var settings = new Dictionary<string, string?>(base.Settings);
            foreach (var (key, value) in Tiers) settings[key] = value;
            return settings;
        }
    }
}

/// <summary>
/// Usage tiers (issue 13): a pay-as-you-go account's rate limits follow what it has paid, on every instance as soon
/// as the payment's webhook lands; a refund takes the tier back; a plan's limits and an admin override are not tiers.
/// </summary>
public sealed class UsageTierTests(TieredBillingApp app) : IClassFixture<TieredBillingApp>, IAsyncLifetime
{
    private const string Password = "a long enough passphrase";
    private WebApplicationFactory<Program> _other = null!;

    public Task InitializeAsync()
    {
        _other = SecondInstance.WithEcho(app.Database.ConnectionString, TieredBillingApp.Tiers.Select(t => (t.Key, t.Value)));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _other.DisposeAsync();

    [Fact]
    public async Task A_payment_lifts_the_rate_limit_on_every_instance_within_5_seconds_and_a_refund_takes_it_back()
    {
        var email = $"payg-{Guid.NewGuid():N}@example.test";
        var user = await app.CreateUserAsync(email, Password);
        var customer = await app.LinkCustomerAsync(user.Id);
        var key = await app.IssueKeyAsync(user.Id);
        var onA = Client(app, key);
        var onB = Client(_other, key);
        await app.GrantAsync(user.Id, 1_000_000);
        Assert.True(await LimitIsAsync(onA, app, 4));
        Assert.True(await LimitIsAsync(onB, _other, 4));

        // $10 through Stripe Checkout, delivered as Stripe delivers it: tier 1 ($5 and up).
        var paymentIntent = $"pi_{Guid.NewGuid():N}";
        var paid = await app.DeliverAsync(BillingApp.Event("checkout.session.completed",
            BillingApp.PaidSession(user.Id, customer, 1000, paymentIntent: paymentIntent)));
        Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
        var landed = Stopwatch.StartNew();
        while (!await LimitIsAsync(onB, _other, 40) && landed.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
        Assert.True(landed.Elapsed < TimeSpan.FromSeconds(5), $"instance B kept the old limit for {landed.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(await LimitIsAsync(onA, app, 40));

        using var session = app.NewSession();
        await session.LogInAsync(email, Password);
        var billing = await session.TextAsync("/billing");
        Assert.Contains("40 requests and 400,000 tokens a minute (usage tier 1)", billing, StringComparison.Ordinal);
        Assert.Contains("Pay $40.00 more in total for 400 requests a minute", billing, StringComparison.Ordinal);

        // A full refund: paid in total back to $0, and the free plan's limits on every instance.
        var refunded = await app.DeliverAsync(BillingApp.Event("charge.refunded", BillingApp.Charge(paymentIntent, 1000, 1000)));
        Assert.Equal(HttpStatusCode.OK, refunded.StatusCode);
        var back = Stopwatch.StartNew();
        while (!await LimitIsAsync(onB, _other, 4) && back.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
        Assert.True(back.Elapsed < TimeSpan.FromSeconds(5), $"instance B kept tier 1 for {back.Elapsed.TotalMilliseconds:0} ms after the refund");
    }

    [Fact]
    public async Task An_admin_override_beats_the_tier_and_a_plan_is_not_a_tier()
    {
        var user = await app.CreateUserAsync($"override-{Guid.NewGuid():N}@example.test", Password);
        var customer = await app.LinkCustomerAsync(user.Id);
        await app.GrantAsync(user.Id, 1_000_000);
        var onB = Client(_other, await app.IssueKeyAsync(user.Id));
        await app.DeliverAsync(BillingApp.Event("checkout.session.completed", BillingApp.PaidSession(user.Id, customer, 6000)));
        Assert.True(await EventuallyAsync(() => LimitIsAsync(onB, _other, 400)));   // tier 2 ($50 and up)

        var adminEmail = $"admin-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(adminEmail, Password, admin: true);
        using var admin = app.NewSession();
        await admin.LogInAsync(adminEmail, Password);
        var url = $"/Admin/Users/{user.Id}";
        Assert.Contains("400 requests / min · 4,000,000 tokens / min", await admin.TextAsync(url), StringComparison.Ordinal);
        await admin.SubmitAsync(url, new() { ["rpm"] = "12", ["tpm"] = "", ["reason"] = "scraping" }, url + "?handler=RateLimits");
        Assert.True(await EventuallyAsync(() => LimitIsAsync(onB, _other, 12)));

        // A subscription's plan sets the limits of a subscriber, whatever they paid.
        var planUser = await app.CreateUserAsync($"plan-{Guid.NewGuid():N}@example.test", Password);
        await app.LinkCustomerAsync(planUser.Id);
        await app.Database.ExecuteAsync($"update billing_accounts set plan_id = 'starter', subscription_id = 'sub_x', subscription_status = 'active' where user_id = '{planUser.Id}'");
        await app.GrantAsync(planUser.Id, 1_000_000);
        Assert.True(await LimitIsAsync(Client(_other, await app.IssueKeyAsync(planUser.Id)), _other, 300));
    }

    [Fact]
    public async Task The_pricing_page_lists_the_tiers_from_configuration()
    {
        var html = await app.CreateClient().GetStringAsync("/pricing");

        Assert.Contains("Usage tiers", html, StringComparison.Ordinal);
        Assert.Contains("<tr><td>$0</td><td>4</td><td>100,000</td></tr>", html, StringComparison.Ordinal);
        Assert.Contains("<tr data-testid=\"usage-tier\"><td>$5</td><td>40</td>", html, StringComparison.Ordinal);
        Assert.Contains("<tr data-testid=\"usage-tier\"><td>$500</td><td>4,000</td>", html, StringComparison.Ordinal);
    }

    private async Task<string> LimitAsync(HttpClient client)
    {
        var response = await client.PostAsJsonAsync("/api/v1/chat/completions",
            new { model = "echo/echo-1", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 5 });
        return response.Headers.GetValues("x-ratelimit-limit-requests").Single();
    }

    /// <summary>
    /// Whether the instance enforces <paramref name="limit"/> for the account: each enforces its share, limit ÷ the live
    /// instances it counts (RateLimits), a count it refreshes every few seconds, so it is read around the call.
    /// </summary>
    private async Task<bool> LimitIsAsync(HttpClient client, WebApplicationFactory<Program> instance, long limit)
    {
        var registry = instance.Services.GetRequiredService<InstanceRegistry>();
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var live = registry.LiveInstances;
            var header = await LimitAsync(client);
            if (registry.LiveInstances == live) return header == Math.Max(1, limit / live).ToString(CultureInfo.InvariantCulture);
        }
        return false;
    }

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            if (await condition()) return true;
            await Task.Delay(50);
        }
        return false;
    }

    private static HttpClient Client(WebApplicationFactory<Program> factory, string key)
    {
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
