using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>
/// The part of Stripe's REST API that AiGate calls, in Stripe's documented shapes (https://docs.stripe.com/api):
/// form-encoded POSTs with bracket notation, Bearer secret key (401 <c>invalid_request_error</c> otherwise),
/// objects with <c>id</c>/<c>object</c>, errors as <c>{"error":{"type","code","message","param"}}</c>, 404
/// <c>resource_missing</c>, 400 <c>parameter_missing</c>, and idempotent POSTs: the same Idempotency-Key
/// replays the first answer (with <c>Idempotent-Replayed: true</c>), and the same key with different parameters gets
/// 400 <c>idempotency_error</c>. <see cref="NextStatuses"/> forces 429 or 5xx; <see cref="FailNextWithoutRetry"/> forces
/// one answered with <c>Stripe-Should-Retry: false</c>.
/// Started with <c>servePages: true</c> it also plays Stripe's hosted pages on its own origin (another origin than the
/// app's, as checkout.stripe.com is): a Checkout Session's <c>url</c> is its checkout page, whose Pay button completes
/// the session, delivers a signed <c>checkout.session.completed</c> to <see cref="WebhookUrl"/> (Stripe's signature
/// scheme) and sends the browser back to the session's <c>success_url</c>; a Billing Portal session's <c>url</c> is its
/// portal page, with a link back to the session's <c>return_url</c>.
/// </summary>
public sealed class FakeStripe : IAsyncDisposable
{
    public const string SecretKey = "sk_test_fake_4eC39HqLyjWDarjtT1zdp7dc";
    private readonly FakeUpstream _server;
    private readonly ConcurrentDictionary<string, (int Status, object Body, string FormHash)> _replays = new();
    private int _counter;

    public ConcurrentQueue<int> NextStatuses { get; } = new();
    private readonly ConcurrentQueue<int> _noRetryStatuses = new();

    /// <summary>The next request fails with this status and <c>Stripe-Should-Retry: false</c> (before any <see cref="NextStatuses"/>).</summary>
    public void FailNextWithoutRetry(int status) => _noRetryStatuses.Enqueue(status);
    public ConcurrentDictionary<string, Dictionary<string, object?>> Objects { get; } = new();
    public int Created => _counter;
    public Uri BaseUrl => _server.BaseUrl;
    public IEnumerable<FakeUpstream.RecordedRequest> Requests => _server.Requests;

    /// <summary>Where the checkout page delivers its events (the app's <c>/webhooks/stripe</c>), signed with <see cref="WebhookSecret"/>.</summary>
    public Uri? WebhookUrl { get; set; }
    public string WebhookSecret { get; set; } = "";
    /// <summary>The client that delivers webhooks (a test's TLS edge may need its own certificate trusted).</summary>
    public HttpClient WebhookClient { get; set; } = new();

    private readonly bool _servesPages;

    private FakeStripe(FakeUpstream server, bool servesPages)
    {
        _server = server;
        _servesPages = servesPages;
    }

    public static async Task<FakeStripe> StartAsync(bool servePages = false)
    {
        FakeStripe? fake = null;
        var server = await FakeUpstream.StartAsync(app =>
        {
            if (servePages)
            {
                app.MapGet("/c/pay/{id}", (string id) => fake!.CheckoutPage(id));
                app.MapPost("/c/pay/{id}", (string id) => fake!.PayAsync(id));
                app.MapGet("/p/session/{id}", (string id) => fake!.PortalPage(id));
            }
            app.MapPost("/v1/customers", (HttpRequest r) => fake!.PostAsync(r, "customer", "cus", [], f => new()
            {
                ["email"] = f["email"].ToString(), ["metadata"] = Metadata(f, "metadata"),
            }));
            app.MapPost("/v1/checkout/sessions", (HttpRequest r) => fake!.PostAsync(r, "checkout.session", "cs_test", ["mode", "success_url"], f =>
            {
                long? amount = long.TryParse(f["line_items[0][price_data][unit_amount]"], out var a) ? a : f["line_items[0][price]"].Count > 0 ? 1000 : null;
                return new()
                {
                    ["mode"] = f["mode"].ToString(), ["status"] = "open", ["payment_status"] = "unpaid", ["amount_total"] = amount, ["currency"] = "usd",
                    ["customer"] = f["customer"].ToString(), ["client_reference_id"] = f["client_reference_id"].ToString(),
                    ["payment_intent"] = null, ["subscription"] = null, ["metadata"] = Metadata(f, "metadata"),
                    ["success_url"] = f["success_url"].ToString(), ["cancel_url"] = f["cancel_url"].ToString(),
                };
            }));
            app.MapGet("/v1/checkout/sessions/{id}", (HttpRequest r, string id) => fake!.Get(r, id));
            app.MapPost("/v1/billing_portal/sessions", (HttpRequest r) => fake!.PostAsync(r, "billing_portal.session", "bps", ["customer"], f =>
                fake!.Objects.ContainsKey(f["customer"].ToString())
                    ? new() { ["customer"] = f["customer"].ToString(), ["return_url"] = f["return_url"].ToString() }
                    : null));
            app.MapGet("/v1/charges/{id}", (HttpRequest r, string id) => fake!.Get(r, id));
            app.MapGet("/v1/payment_intents/{id}", (HttpRequest r, string id) => fake!.Get(r, id));
        });
        return fake = new FakeStripe(server, servePages);
    }

    private IResult CheckoutPage(string id)
    {
        if (!Objects.TryGetValue(id, out var session) || session["object"] as string != "checkout.session") return Results.NotFound();
        var amount = session["amount_total"] is long cents ? $"${cents / 100m:0.00}" : "?";
        return Results.Content($"""
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Stripe Checkout</title><link rel="icon" href="data:,"></head>
            <body><h1>Fake Stripe Checkout</h1><p data-testid="fake-checkout-amount">{amount}</p>
            <form method="post" action="/c/pay/{id}"><button type="submit" data-testid="fake-checkout-pay">Pay</button></form></body></html>
            """, "text/html; charset=utf-8");
    }

    private IResult PortalPage(string id)
    {
        if (!Objects.TryGetValue(id, out var portal) || portal["object"] as string != "billing_portal.session") return Results.NotFound();
        return Results.Content($"""
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Stripe Billing Portal</title><link rel="icon" href="data:,"></head>
            <body><h1>Fake Stripe Billing Portal</h1><p data-testid="fake-portal-customer">{portal["customer"]}</p>
            <a href="{portal["return_url"]}" data-testid="fake-portal-return">Return</a></body></html>
            """, "text/html; charset=utf-8");
    }

    private async Task<IResult> PayAsync(string id)
    {
        if (!Objects.TryGetValue(id, out var session) || session["object"] as string != "checkout.session") return Results.NotFound();
        session["status"] = "complete";
        session["payment_status"] = "paid";
        if (session["mode"] as string == "payment") session["payment_intent"] = $"pi_fake_{id}";
        else session["subscription"] = $"sub_fake_{id}";
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
        {
            ["id"] = $"evt_{Guid.NewGuid():N}", ["object"] = "event", ["api_version"] = "2024-06-20", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["livemode"] = false, ["type"] = "checkout.session.completed", ["data"] = new Dictionary<string, object?> { ["object"] = session },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, WebhookUrl ?? throw new InvalidOperationException("WebhookUrl is not set"))
        {
            Content = new ByteArrayContent(payload) { Headers = { ContentType = new("application/json") { CharSet = "utf-8" } } },
        };
        request.Headers.Add("Stripe-Signature", Sign(payload, WebhookSecret, DateTimeOffset.UtcNow));
        using var response = await WebhookClient.SendAsync(request);
        if (!response.IsSuccessStatusCode)
            return Results.Content($"webhook answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}", "text/plain", statusCode: 502);
        return Results.Redirect(((string)session["success_url"]!).Replace("{CHECKOUT_SESSION_ID}", id, StringComparison.Ordinal));
    }

    /// <summary>Stripe's webhook signature: <c>t=…,v1=</c> hex HMAC-SHA256 of <c>"{t}.{payload}"</c> keyed by the endpoint secret.</summary>
    public static string Sign(byte[] payload, string secret, DateTimeOffset at)
    {
        var timestamp = at.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var signed = Encoding.UTF8.GetBytes(timestamp + ".").Concat(payload).ToArray();
        return $"t={timestamp},v1={Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed))}";
    }

    private async Task<IResult> PostAsync(HttpRequest request, string type, string prefix, string[] required,
        Func<IFormCollection, Dictionary<string, object?>?> build)
    {
        if (Unauthorized(request) is { } denied) return denied;
        if (Forced() is { } forced) return forced;
        if (!request.HasFormContentType) return Error(400, "invalid_request_error", null, "Invalid request: expected form-encoded body", null);
        var form = await request.ReadFormAsync();
        var key = request.Headers["Idempotency-Key"].ToString();
        var formHash = Hash(form);
        if (key.Length > 0 && _replays.TryGetValue($"{request.Path}|{key}", out var replay))
            return replay.FormHash == formHash
                ? new WithHeader(Results.Json(replay.Body, statusCode: replay.Status), "Idempotent-Replayed", "true")
                : Error(400, "idempotency_error", null,
                    $"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.", null);
        foreach (var name in required)
            if (string.IsNullOrEmpty(form[name]))
                return Error(400, "invalid_request_error", "parameter_missing", $"Missing required param: {name}.", name);

        var fields = build(form);
        if (fields is null) return Error(400, "invalid_request_error", "resource_missing", "No such customer: 'unknown'", "customer");
        var id = $"{prefix}_{Interlocked.Increment(ref _counter):D6}";
        fields["id"] = id;
        fields["object"] = type;
        fields["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        fields["livemode"] = false;
        var pages = _servesPages ? BaseUrl.GetLeftPart(UriPartial.Authority) : null;
        if (type == "checkout.session") fields["url"] = $"{pages ?? "https://checkout.stripe.com"}/c/pay/{id}";
        if (type == "billing_portal.session") fields["url"] = $"{pages ?? "https://billing.stripe.com"}/p/session/{id}";
        Objects[id] = fields;
        if (key.Length > 0) _replays[$"{request.Path}|{key}"] = (200, fields, formHash);
        return Results.Json(fields);
    }

    private IResult Get(HttpRequest request, string id)
    {
        if (Unauthorized(request) is { } denied) return denied;
        if (Forced() is { } forced) return forced;
        return Objects.TryGetValue(id, out var found)
            ? Results.Json(found)
            : Error(404, "invalid_request_error", "resource_missing", $"No such object: '{id}'", "id");
    }

    private static IResult? Unauthorized(HttpRequest request) =>
        request.Headers.Authorization.ToString() == $"Bearer {SecretKey}"
            ? null
            : Error(401, "invalid_request_error", null, "Invalid API Key provided: sk_test_****", null);

    private IResult? Forced() => _noRetryStatuses.TryDequeue(out var noRetry)
        ? new WithHeader(Error(noRetry, "api_error", null, "Something went wrong on Stripe's end.", null), "Stripe-Should-Retry", "false")
        : NextStatuses.TryDequeue(out var status)
        ? status == 429
            ? Error(429, "invalid_request_error", "rate_limit", "Request rate limit exceeded.", null)
            : Error(status, "api_error", null, "Something went wrong on Stripe's end.", null)
        : null;

    private static Dictionary<string, string> Metadata(IFormCollection form, string prefix) =>
        form.Keys.Where(k => k.StartsWith(prefix + "[", StringComparison.Ordinal) && k.EndsWith(']') && k.IndexOf('[', prefix.Length + 1) < 0)
            .ToDictionary(k => k[(prefix.Length + 1)..^1], k => form[k].ToString());

    private static IResult Error(int status, string type, string? code, string message, string? param) =>
        Results.Json(new { error = new { type, code, message, param, doc_url = code is null ? null : $"https://docs.stripe.com/error-codes/{code.Replace('_', '-')}" } },
            statusCode: status);

    private static string Hash(IFormCollection form) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
        string.Join('&', form.Keys.Order(StringComparer.Ordinal).Select(k => $"{k}={form[k]}")))));

    private sealed class WithHeader(IResult inner, string name, string value) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers[name] = value;
            return inner.ExecuteAsync(httpContext);
        }
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
