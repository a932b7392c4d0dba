using System.Text.RegularExpressions;
using AiGate.Web.Tests.Features.Billing;
using AiGate.Web.Tests.Infrastructure;

namespace AiGate.Web.Tests.InfrastructureTests;

/// <summary>
/// The policy's <c>form-action</c> governs the redirect after the billing page's form POSTs (Chromium enforces it),
/// so it must list exactly where those redirects go. The browser proof is AiGate.E2E's ProductionCheckoutTests.
/// </summary>
public sealed partial class ContentSecurityPolicyTests
{
    [Fact]
    public async Task With_the_local_TEST_checkout_forms_may_post_only_to_the_app_itself()
    {
        Assert.Equal("'self'", await FormActionAsync(new StripeApp(null)));
    }

    [Fact]
    public async Task With_Stripe_forms_may_also_lead_to_Checkout_and_the_Billing_Portal_and_nowhere_else()
    {
        Assert.Equal("'self' https://checkout.stripe.com https://billing.stripe.com", await FormActionAsync(new StripeApp(new Uri("https://api.stripe.com"))));
    }

    [Fact]
    public async Task With_a_fake_Stripe_forms_may_lead_to_the_fakes_origin_where_it_serves_those_pages()
    {
        Assert.Equal("'self' http://127.0.0.1:49152", await FormActionAsync(new StripeApp(new Uri("http://127.0.0.1:49152/"))));
    }

    private static async Task<string> FormActionAsync(StripeApp app)
    {
        string policy;
        await ((IAsyncLifetime)app).InitializeAsync();
        try
        {
            var response = await app.CreateClient().GetAsync("/billing");
            policy = response.Headers.GetValues("Content-Security-Policy").Single();
        }
        finally
        {
            await ((IAsyncLifetime)app).DisposeAsync();
        }
        return FormAction().Match(policy) is { Success: true } m ? m.Groups[1].Value : throw new Xunit.Sdk.XunitException($"no form-action in {policy}");
    }

    [GeneratedRegex("(?:^|; )form-action ([^;]+)")]
    private static partial Regex FormAction();

    private sealed class StripeApp(Uri? apiBase) : AiGateApp
    {
        protected override IReadOnlyDictionary<string, string?> Settings => apiBase is null
            ? base.Settings
            : new Dictionary<string, string?>(base.Settings)
            {
                ["Stripe:SecretKey"] = FakeStripe.SecretKey, ["Stripe:WebhookSecret"] = "whsec_test_csp", ["Stripe:ApiBase"] = apiBase.ToString(),
            };
    }
}
