using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AiGate.Web.Features.Billing;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Features.Billing;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>
/// The app with one fake OpenAI provider and two models at real-looking list prices and margins, so a call's
/// provider cost and charge both round: what the business page and the provider-cost column are tested with.
/// The fake answers every call with 11 prompt and 7 completion tokens.
/// </summary>
public sealed class BusinessApp : AccountsApp
{
    public const string Password = "a long enough passphrase";

    /// <summary>$2.50 / $10 / $1.25 per million input / output / cached tokens, margin 1.8: 11 + 7 tokens list 97.5 µ$, charge 175.5 µ$.</summary>
    public const string Gpt = "biz/gpt";
    /// <summary>$0.15 / $0.60 per million, margin 1.25: 11 + 7 tokens list 5.85 µ$, charge 7.3125 µ$.</summary>
    public const string Mini = "biz/mini";

    public FakeOpenAi Upstream { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        Upstream = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
        await Database.ExecuteAsync($"""
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                                cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
            values ('{Gpt}', 'Biz GPT', 'chat', 'test', 8192, 1024, 2500000, 10000000, 1250000, 18000, array[]::text[], array['text'], true, now()),
                   ('{Mini}', 'Biz Mini', 'chat', 'test', 8192, 1024, 150000, 600000, 75000, 12500, array[]::text[], array['text'], true, now());
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled)
            values ('{Gpt}', 'fake', 'fake-gpt', 0, 1, true), ('{Mini}', 'fake', 'fake-mini', 0, 1, true);
            """);
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Providers:fake:Kind"] = "openai", ["Providers:fake:BaseUrl"] = Upstream.BaseUrl.ToString(), ["Providers:fake:ApiKey"] = "sk-fake",
    };

    /// <summary>A signed-in admin's browser session.</summary>
    public async Task<WebSession> AdminAsync(string? email = null)
    {
        email ??= $"admin-{Guid.NewGuid():N}@example.test";
        await CreateUserAsync(email, Password, admin: true);
        var session = NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync(email, Password)).StatusCode);
        return session;
    }

    /// <summary>A user with credit and a key, under <paramref name="email"/>; returns an API client and the user's id.</summary>
    public async Task<(HttpClient Client, Guid UserId)> ApiUserAsync(string email, long creditMicros = 10_000_000)
    {
        var user = await CreateUserAsync(email, Password);
        await GrantAsync(user.Id, creditMicros);
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await IssueKeyAsync(user.Id));
        return (client, user.Id);
    }

    /// <summary><paramref name="calls"/> chat calls of <paramref name="model"/>, each answered 200.</summary>
    public static async Task CallAsync(HttpClient client, string model, int calls)
    {
        for (var i = 0; i < calls; i++)
        {
            using var response = await client.PostAsJsonAsync("/api/v1/chat/completions",
                new { model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 50 });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    /// <summary>POSTs an event to /webhooks/stripe signed with the endpoint secret, as Stripe does.</summary>
    public async Task DeliverAsync(string type, object data)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(new
        {
            id = $"evt_{Guid.NewGuid():N}", @object = "event", api_version = StripeOptions.ApiVersion,
            created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), livemode = false, type, data = new { @object = data },
        });
        var content = new ByteArrayContent(payload);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe") { Content = content };
        request.Headers.Add("Stripe-Signature", FakeStripe.Sign(payload, Services.GetRequiredService<StripeWebhookSecret>().Value, DateTimeOffset.UtcNow));
        using var response = await CreateClient().SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    /// <summary>A paid Checkout Session of <paramref name="cents"/> for the user, through the webhook; returns its payment intent.</summary>
    public async Task<string> BuyAsync(Guid userId, long cents)
    {
        var customer = $"cus_{Guid.NewGuid():N}"[..18];
        await Database.ExecuteAsync($"""
            insert into billing_accounts (user_id, stripe_customer_id, plan_id, cancel_at_period_end, state_as_of, dunning_step, updated_at)
            values ('{userId}', '{customer}', 'free', false, 0, 0, now()) on conflict (user_id) do nothing
            """);
        var pi = $"pi_{Guid.NewGuid():N}";
        await DeliverAsync("checkout.session.completed", new
        {
            id = $"cs_test_{Guid.NewGuid():N}", @object = "checkout.session", mode = "payment", status = "complete", payment_status = "paid",
            amount_total = cents, currency = "usd", customer, client_reference_id = userId.ToString(), payment_intent = pi,
            metadata = new Dictionary<string, string> { ["kind"] = "custom", ["user_id"] = userId.ToString() },
            subscription = (string?)null, url = (string?)null, created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        });
        return pi;
    }

    public Task RefundAsync(string paymentIntent, long amountCents, long refundedCents) => DeliverAsync("charge.refunded", new
    {
        id = $"ch_{Guid.NewGuid():N}", @object = "charge", amount = amountCents, amount_refunded = refundedCents, currency = "usd",
        payment_intent = paymentIntent, refunded = refundedCents == amountCents, receipt_url = "https://pay.stripe.com/receipts/test",
        customer = (string?)null, invoice = (string?)null,
    });

    public Task DisputeAsync(string paymentIntent, long amountCents) => DeliverAsync("charge.dispute.created", new
    {
        id = "dp_" + Guid.NewGuid().ToString("N")[..10], @object = "dispute", amount = amountCents, charge = "ch_1", currency = "usd",
        payment_intent = paymentIntent, reason = "fraudulent", status = "needs_response",
    });

    public static string Csv(params string[] lines) => string.Join("\r\n", lines) + "\r\n";

    public static Encoding Utf8 => new UTF8Encoding(false);
}
