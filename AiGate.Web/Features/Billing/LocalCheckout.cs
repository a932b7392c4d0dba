using System.Text;
using System.Text.Json.Nodes;
using Stripe;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// Completes local TEST orders the way Stripe would: each event <see cref="LocalStripe"/> produces is
/// serialised, signed with the webhook secret in use (Stripe.net's <see cref="EventUtility.GenerateSignatureHeader"/>, Stripe's scheme) and POSTed to this app's own
/// <c>/webhooks/stripe</c>, so the real verification and fulfilment code runs.
/// </summary>
public sealed partial class LocalCheckout(IHttpClientFactory httpClients, StripeWebhookSecret secret, TimeProvider clock, ILogger<LocalCheckout> logger)
{
    public const string HttpClientName = "stripe-local-webhook";

    /// <summary>Delivers the events in order; false if the endpoint refused one (the page says so).</summary>
    public async Task<bool> DeliverAsync(Uri appBase, IEnumerable<JsonObject> events, CancellationToken ct)
    {
        var http = httpClients.CreateClient(HttpClientName);
        foreach (var e in events)
        {
            var json = e.ToJsonString();
            var payload = Encoding.UTF8.GetBytes(json);
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(appBase, "/webhooks/stripe"))
            {
                Content = new ByteArrayContent(payload) { Headers = { ContentType = new("application/json") { CharSet = "utf-8" } } },
            };
            request.Headers.Add("Stripe-Signature", EventUtility.GenerateSignatureHeader(json, secret.Value, clock.GetUtcNow().ToUnixTimeSeconds()));
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
