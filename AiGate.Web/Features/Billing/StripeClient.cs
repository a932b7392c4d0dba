using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// A small typed client over Stripe's REST API (Stripe.net is not in our package source). Requests are
/// form-encoded with Stripe's bracket notation (<c>metadata[user_id]=…</c>), authenticated with the secret
/// key as a Bearer token, pin <c>Stripe-Version</c>, and every POST carries an <c>Idempotency-Key</c> that
/// is reused by the retries of that call, so a retried create never creates twice. 429, 5xx and network
/// failures are retried with back-off (Stripe's <c>Stripe-Should-Retry</c> header wins when present);
/// other errors become a <see cref="StripeException"/> carrying Stripe's error type, code and message.
/// </summary>
public sealed partial class StripeClient(HttpClient http, IOptions<StripeOptions> options, TimeProvider clock, ILogger<StripeClient> logger) : IStripeApi
{
    public Task<StripeCustomer> CreateCustomerAsync(Guid userId, string email, CancellationToken ct) =>
        // Keyed by the user, so two racing first checkouts get the same customer back from Stripe (within 24 h).
        PostAsync<StripeCustomer>("v1/customers", [("email", email), ("metadata[user_id]", userId.ToString())], $"customer-{userId}", ct);

    public Task<StripeCheckoutSession> CreateCheckoutSessionAsync(CheckoutRequest r, CancellationToken ct)
    {
        var form = new List<(string, string)>
        {
            ("mode", r.Mode),
            ("customer", r.CustomerId),
            ("client_reference_id", r.UserId.ToString()),
            ("success_url", r.SuccessUrl),
            ("cancel_url", r.CancelUrl),
            ("metadata[user_id]", r.UserId.ToString()),
            ("metadata[kind]", r.Kind),
            ("line_items[0][quantity]", "1"),
        };
        if (r.ItemId is not null) form.Add(("metadata[item_id]", r.ItemId));
        if (r.PriceId is not null)
        {
            form.Add(("line_items[0][price]", r.PriceId));
        }
        else
        {
            form.Add(("line_items[0][price_data][currency]", "usd"));
            form.Add(("line_items[0][price_data][unit_amount]", r.AmountCents!.Value.ToString(CultureInfo.InvariantCulture)));
            form.Add(("line_items[0][price_data][product_data][name]", r.Description));
            if (r.Mode == "subscription") form.Add(("line_items[0][price_data][recurring][interval]", "month"));
        }
        if (r.Mode == "subscription")
        {
            // Invoices of the subscription carry these in subscription_details.metadata.
            form.Add(("subscription_data[metadata][user_id]", r.UserId.ToString()));
            form.Add(("subscription_data[metadata][plan_id]", r.ItemId ?? ""));
        }
        else
        {
            form.Add(("payment_intent_data[metadata][user_id]", r.UserId.ToString()));
        }
        return PostAsync<StripeCheckoutSession>("v1/checkout/sessions", form, Guid.NewGuid().ToString(), ct);
    }

    public Task<StripeCheckoutSession> GetCheckoutSessionAsync(string id, CancellationToken ct) =>
        GetAsync<StripeCheckoutSession>($"v1/checkout/sessions/{Uri.EscapeDataString(id)}", ct);

    public Task<StripePortalSession> CreatePortalSessionAsync(string customerId, string returnUrl, CancellationToken ct) =>
        PostAsync<StripePortalSession>("v1/billing_portal/sessions", [("customer", customerId), ("return_url", returnUrl)], Guid.NewGuid().ToString(), ct);


    public Task<StripeCharge> GetChargeAsync(string id, CancellationToken ct) => GetAsync<StripeCharge>($"v1/charges/{Uri.EscapeDataString(id)}", ct);

    public Task<StripePaymentIntent> GetPaymentIntentAsync(string id, CancellationToken ct) =>
        GetAsync<StripePaymentIntent>($"v1/payment_intents/{Uri.EscapeDataString(id)}", ct);

    private Task<T> PostAsync<T>(string path, IReadOnlyList<(string Name, string Value)> form, string idempotencyKey, CancellationToken ct) =>
        SendAsync<T>(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.Value.ApiBase, path))
            {
                Content = new FormUrlEncodedContent(form.Select(f => new KeyValuePair<string, string>(f.Name, f.Value))),
            };
            request.Headers.Add("Idempotency-Key", idempotencyKey);
            return request;
        }, ct);

    private Task<T> GetAsync<T>(string path, CancellationToken ct) =>
        SendAsync<T>(() => new HttpRequestMessage(HttpMethod.Get, new Uri(options.Value.ApiBase, path)), ct);

    private async Task<T> SendAsync<T>(Func<HttpRequestMessage> create, CancellationToken ct)
    {
        var o = options.Value;
        for (var attempt = 0; ; attempt++)
        {
            using var request = create();
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", o.SecretKey);
            request.Headers.Add("Stripe-Version", StripeOptions.ApiVersion);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(o.TimeoutSeconds));

            StripeException failure;
            TimeSpan? retryAfter = null;
            bool? shouldRetry = null;
            try
            {
                using var response = await http.SendAsync(request, timeout.Token);
                var body = await response.Content.ReadAsStringAsync(timeout.Token);
                var requestId = response.Headers.TryGetValues("Request-Id", out var ids) ? ids.FirstOrDefault() : null;
                if (response.IsSuccessStatusCode)
                {
                    try
                    {
                        return JsonSerializer.Deserialize<T>(body, StripeJson.Options) ?? throw new JsonException("empty body");
                    }
                    catch (JsonException ex)
                    {
                        throw new StripeException((int)response.StatusCode, "invalid_response", null, $"unreadable {typeof(T).Name}: {ex.Message}", requestId);
                    }
                }
                failure = ToException((int)response.StatusCode, body, requestId);
                retryAfter = response.Headers.RetryAfter?.Delta;
                // Stripe says explicitly whether a retry can help; that beats our status-code guess.
                if (response.Headers.TryGetValues("Stripe-Should-Retry", out var should) && bool.TryParse(should.FirstOrDefault(), out var retry))
                    shouldRetry = retry;
            }
            catch (Exception ex) when (ex is HttpRequestException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
            {
                failure = new StripeException(0, "api_connection_error", null, ex is OperationCanceledException ? "timed out" : "could not reach Stripe", null);
            }

            if (!(shouldRetry ?? failure.Transient) || attempt >= o.MaxRetries) throw failure;
            var delay = retryAfter ?? TimeSpan.FromMilliseconds(250 * Math.Pow(2, attempt) + Random.Shared.Next(0, 100));
            LogRetrying(failure.Status, failure.Type, attempt + 1, delay.TotalMilliseconds);
            await Task.Delay(delay, clock, ct);
        }
    }

    private static StripeException ToException(int status, string body, string? requestId)
    {
        StripeErrorDetail? error = null;
        try
        {
            error = JsonSerializer.Deserialize<StripeErrorBody>(body, StripeJson.Lenient)?.Error;
        }
        catch (JsonException)
        {
            // a proxy's HTML page: the status decides
        }
        return new StripeException(status, error?.Type, error?.Code ?? error?.DeclineCode, error?.Message ?? $"HTTP {status}", requestId);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stripe answered {Status} {ErrorType}; retry {Attempt} in {DelayMs} ms")]
    private partial void LogRetrying(int status, string? errorType, int attempt, double delayMs);
}
