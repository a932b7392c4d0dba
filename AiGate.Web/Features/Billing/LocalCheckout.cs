using System.Text;
using System.Text.Json;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// Completes local TEST orders the way Stripe would: each event <see cref="LocalStripe"/> produces is
/// serialised, signed with the webhook secret in use (Stripe's scheme) and POSTed to this app's own
/// <c>/webhooks/stripe</c>, so the real verification and fulfilment code runs.
/// </summary>
public sealed partial class LocalCheckout(IHttpClientFactory httpClients, StripeWebhookSecret secret, TimeProvider clock, ILogger<LocalCheckout> logger)
{
    public const string HttpClientName = "stripe-local-webhook";

    /// <summary>Delivers the events in order; false if the endpoint refused one (the page says so).</summary>
    public async Task<bool> DeliverAsync(Uri appBase, IEnumerable<object> events, CancellationToken ct)
    {
        var http = httpClients.CreateClient(HttpClientName);
        foreach (var e in events)
        {
            var payload = JsonSerializer.SerializeToUtf8Bytes(e);
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(appBase, "/webhooks/stripe"))
            {
                Content = new ByteArrayContent(payload) { Headers = { ContentType = new("application/json") { CharSet = "utf-8" } } },
            };
            request.Headers.Add("Stripe-Signature", StripeSignature.Sign(payload, secret.Value, clock.GetUtcNow()));
            using var response = await http.SendAsync(request, ct);
            if (!response.IsSuccessStatusCode)
            {
                LogRefused((int)response.StatusCode, Encoding.UTF8.GetString(payload, 0, Math.Min(payload.Length, 80)));
                return false;
            }
        }
        return true;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The local webhook refused a TEST event ({Status}): {Start}…")]
    private partial void LogRefused(int status, string start);
}
