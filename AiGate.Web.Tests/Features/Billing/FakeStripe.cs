using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace AiGate.Web.Tests.Features.Billing;

/// <summary>
/// The part of Stripe's REST API that AiGate calls, in Stripe's documented wire format (https://docs.stripe.com/api), and
/// strict about what it receives, so a test fails when AiGate sends what Stripe would refuse:
/// <list type="bullet">
/// <item>every request carries <c>Authorization: Bearer</c> the secret key (else 401) and <c>Stripe-Version</c> equal to
/// <see cref="ApiVersion"/>, the version the app pins (else 400);</item>
/// <item>POSTs are <c>application/x-www-form-urlencoded</c> with Stripe's nested keys (<c>metadata[user_id]</c>,
/// <c>line_items[0][price_data][unit_amount]</c>, <c>expand[]</c> or <c>expand[0]</c>) and an <c>Idempotency-Key</c>; a parameter
/// the endpoint does not take is 400 <c>parameter_unknown</c>, a missing one 400 <c>parameter_missing</c>, an unknown customer or
/// price 400 <c>resource_missing</c>, as Stripe answers;</item>
/// <item>the same Idempotency-Key replays the first answer (<c>Idempotent-Replayed: true</c>); with other parameters it is 400
/// <c>idempotency_error</c>;</item>
/// <item>objects have <c>id</c>, <c>object</c>, <c>created</c>, <c>livemode</c>; errors are
/// <c>{"error":{"type","code","message","param","doc_url"}}</c>; every answer has a <c>Request-Id</c>.</item>
/// </list>
/// <see cref="FailNext"/> forces an error answer (a 5xx, a 409, a 402 card error, with or without <c>Stripe-Should-Retry</c>).
/// Started with <c>servePages: true</c> it also plays Stripe's hosted pages on its own origin (another origin than the
/// app's, as checkout.stripe.com is): a Checkout Session's <c>url</c> is its checkout page, whose Pay button completes
/// the session, delivers a signed <c>checkout.session.completed</c> to <see cref="WebhookUrl"/> (Stripe's signature
/// scheme, computed here independently of the app) and sends the browser back to the session's <c>success_url</c>; a
/// Billing Portal session's <c>url</c> is its portal page, with a link back to the session's <c>return_url</c>.
/// </summary>
public sealed class FakeStripe : IAsyncDisposable
{
    public const string SecretKey = "sk_test_fake_4eC39HqLyjWDarjtT1zdp7dc";

    /// <summary>The version requests must pin: the one Stripe.net was generated for, which the app pins.</summary>
    public static string ApiVersion => Stripe.StripeConfiguration.ApiVersion;

    private readonly FakeUpstream _server;
    private readonly ConcurrentDictionary<string, (object Body, string FormHash)> _replays = new();
    private readonly ConcurrentQueue<ForcedError> _failures = new();
    private int _counter;

    public ConcurrentDictionary<string, Dictionary<string, object?>> Objects { get; } = new();
    /// <summary>Prices that exist in this Stripe account (a Checkout line item naming another is refused).</summary>
    public ConcurrentDictionary<string, long> Prices { get; } = new();
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

    private sealed record ForcedError(int Status, string Type, string? Code, string Message, string? Param, bool? ShouldRetry);

    /// <summary>The next API request gets this error (in Stripe's envelope); <paramref name="shouldRetry"/> sets <c>Stripe-Should-Retry</c>.</summary>
    public void FailNext(int status, string type = "api_error", string? code = null, string message = "Something went wrong on Stripe's end.",
        string? param = null, bool? shouldRetry = null) => _failures.Enqueue(new(status, type, code, message, param, shouldRetry));

    // Top-level parameters each endpoint takes (https://docs.stripe.com/api); AiGate uses a subset, anything else is refused.
    private static readonly string[] CustomerParams = ["email", "metadata", "name", "description", "expand"];
    private static readonly string[] SessionParams =
        ["mode", "customer", "client_reference_id", "success_url", "cancel_url", "metadata", "line_items", "subscription_data", "payment_intent_data", "expand"];
    private static readonly string[] PortalParams = ["customer", "return_url", "configuration", "locale", "expand"];

    public static async Task<FakeStripe> StartAsync(bool servePages = false)
    {
        FakeStripe? fake = null;
        var server = await FakeUpstream.StartAsync(app =>
        {
            app.Use((context, next) =>
            {
                context.Response.Headers["Request-Id"] = $"req_fake{Guid.NewGuid():N}"[..22];
                return next(context);
            });
            if (servePages)
            {
                app.MapGet("/c/pay/{id}", (string id) => fake!.CheckoutPage(id));
                app.MapPost("/c/pay/{id}", (string id) => fake!.PayAsync(id));
                app.MapGet("/p/session/{id}", (string id) => fake!.PortalPage(id));
            }
            app.MapPost("/v1/customers", (HttpRequest r) => fake!.PostAsync(r, "customer", "cus", CustomerParams, [], fake!.Customer));
            app.MapPost("/v1/checkout/sessions", (HttpRequest r) => fake!.PostAsync(r, "checkout.session", "cs_test", SessionParams, ["mode", "success_url"], fake!.Session));
            app.MapGet("/v1/checkout/sessions/{id}", (HttpRequest r, string id) => fake!.Get(r, "checkout.session", id));
            app.MapPost("/v1/billing_portal/sessions", (HttpRequest r) => fake!.PostAsync(r, "billing_portal.session", "bps", PortalParams, ["customer"], fake!.Portal));
            app.MapGet("/v1/charges/{id}", (HttpRequest r, string id) => fake!.Get(r, "charge", id));
            app.MapGet("/v1/payment_intents/{id}", (HttpRequest r, string id) => fake!.Get(r, "payment_intent", id));
            app.MapGet("/v1/invoice_payments", (HttpRequest r) => fake!.ListInvoicePayments(r));
            app.MapFallback((HttpRequest r) => Error(404, "invalid_request_error", null, $"Unrecognized request URL ({r.Method}: {r.Path}).", null));
        });
        return fake = new FakeStripe(server, servePages);
    }

    private (Dictionary<string, object?>? Fields, IResult? Error) Customer(Form f) =>
        (new() { ["email"] = f.String("email"), ["metadata"] = f.Metadata("metadata"), ["name"] = f.String("name") }, null);

    private (Dictionary<string, object?>? Fields, IResult? Error) Session(Form f)
    {
        var mode = f.String("mode");
        if (mode is not ("payment" or "subscription" or "setup"))
            return (null, Error(400, "invalid_request_error", null, $"Invalid mode: must be one of payment, setup, or subscription", "mode"));
        if (f.String("customer") is { } customer && !Objects.ContainsKey(customer))
            return (null, Error(400, "invalid_request_error", "resource_missing", $"No such customer: '{customer}'", "customer"));
        if (f.Unknown("line_items[0]", ["price", "price_data", "quantity"]) is { } badItem) return (null, badItem);
        if (f.Unknown("line_items[0][price_data]", ["currency", "unit_amount", "product_data", "recurring", "product"]) is { } badPrice) return (null, badPrice);
        if (f.Unknown("subscription_data", ["metadata", "trial_period_days", "description"]) is { } badSub) return (null, badSub);
        if (f.Unknown("payment_intent_data", ["metadata", "description", "receipt_email"]) is { } badIntent) return (null, badIntent);
        if (mode == "payment" && f.Has("subscription_data"))
            return (null, Error(400, "invalid_request_error", null, "You can not pass `subscription_data` in `payment` mode.", "subscription_data"));
        if (mode == "subscription" && f.Has("payment_intent_data"))
            return (null, Error(400, "invalid_request_error", null, "You can not pass `payment_intent_data` in `subscription` mode.", "payment_intent_data"));

        long amount;
        if (f.String("line_items[0][price]") is { } price)
        {
            if (!Prices.TryGetValue(price, out amount))
                return (null, Error(400, "invalid_request_error", "resource_missing", $"No such price: '{price}'", "line_items[0][price]"));
        }
        else if (long.TryParse(f.String("line_items[0][price_data][unit_amount]"), NumberStyles.None, CultureInfo.InvariantCulture, out amount))
        {
            if (f.String("line_items[0][price_data][currency]") is null)
                return (null, Error(400, "invalid_request_error", "parameter_missing", "Missing required param: line_items[0][price_data][currency].", "line_items[0][price_data][currency]"));
            var recurring = f.Has("line_items[0][price_data][recurring]");
            if (mode == "subscription" && !recurring)
                return (null, Error(400, "invalid_request_error", null, "You must provide at least one recurring price in `subscription` mode when using prices.", "line_items"));
            if (mode == "payment" && recurring)
                return (null, Error(400, "invalid_request_error", null, "You specified `payment` mode but passed a recurring price.", "line_items[0][price_data][recurring]"));
        }
        else
        {
            return (null, Error(400, "invalid_request_error", "parameter_missing", "Missing required param: line_items[0][price].", "line_items[0][price]"));
        }
        return (new()
        {
            ["mode"] = mode, ["status"] = "open", ["payment_status"] = "unpaid", ["amount_subtotal"] = amount, ["amount_total"] = amount, ["currency"] = "usd",
            ["customer"] = f.String("customer"), ["client_reference_id"] = f.String("client_reference_id"),
            ["payment_intent"] = null, ["subscription"] = null, ["invoice"] = null, ["metadata"] = f.Metadata("metadata"),
            ["success_url"] = f.String("success_url"), ["cancel_url"] = f.String("cancel_url"),
            ["expires_at"] = DateTimeOffset.UtcNow.AddHours(24).ToUnixTimeSeconds(),
        }, null);
    }

    private (Dictionary<string, object?>? Fields, IResult? Error) Portal(Form f) =>
        f.String("customer") is { } customer && Objects.ContainsKey(customer)
            ? (new() { ["customer"] = customer, ["return_url"] = f.String("return_url"), ["configuration"] = "bpc_fake_default", ["flow"] = null, ["locale"] = null }, null)
            : (null, Error(400, "invalid_request_error", "resource_missing", $"No such customer: '{f.String("customer")}'", "customer"));

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
        if (session["mode"] as string == "payment")
        {
            var intent = $"pi_fake_{id}";
            var charge = $"ch_fake_{id}";
            session["payment_intent"] = intent;
            Objects[intent] = new() { ["id"] = intent, ["object"] = "payment_intent", ["amount"] = session["amount_total"], ["currency"] = "usd", ["status"] = "succeeded",
                ["latest_charge"] = charge, ["customer"] = session["customer"], ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["livemode"] = false };
            Objects[charge] = new() { ["id"] = charge, ["object"] = "charge", ["amount"] = session["amount_total"], ["amount_refunded"] = 0L, ["currency"] = "usd",
                ["customer"] = session["customer"], ["payment_intent"] = intent, ["refunded"] = false, ["paid"] = true, ["status"] = "succeeded",
                ["receipt_url"] = $"https://pay.stripe.com/receipts/fake/{charge}", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["livemode"] = false };
        }
        else
        {
            session["subscription"] = $"sub_fake_{id}";
        }
        var payload = JsonSerializer.SerializeToUtf8Bytes(EventOf("checkout.session.completed", session));
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

    /// <summary>An event as Stripe delivers it to an endpoint created with <paramref name="apiVersion"/> (default: the pinned one).</summary>
    public static Dictionary<string, object?> EventOf(string type, object data, long? created = null, string? id = null, string? apiVersion = null) => new()
    {
        ["id"] = id ?? $"evt_{Guid.NewGuid():N}", ["object"] = "event", ["api_version"] = apiVersion ?? ApiVersion,
        ["created"] = created ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["livemode"] = false, ["pending_webhooks"] = 1,
        ["request"] = new Dictionary<string, object?> { ["id"] = null, ["idempotency_key"] = null }, ["type"] = type,
        ["data"] = new Dictionary<string, object?> { ["object"] = data },
    };

    /// <summary>
    /// Stripe's webhook signature (https://docs.stripe.com/webhooks#verify-manually), computed here independently of the app:
    /// <c>t=…,v1=…</c>, each <c>v1</c> the lower-case hex HMAC-SHA256 of <c>"{t}.{payload}"</c> keyed by one secret. Several
    /// secrets give several <c>v1</c> values, as Stripe sends while an endpoint's secret is being rolled.
    /// </summary>
    public static string Sign(byte[] payload, string secret, DateTimeOffset at, params string[] moreSecrets)
    {
        var timestamp = at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var signed = Encoding.UTF8.GetBytes(timestamp + ".").Concat(payload).ToArray();
        var header = new StringBuilder($"t={timestamp}");
        foreach (var s in (string[])[secret, .. moreSecrets])
            header.Append(",v1=").Append(Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(s), signed)));
        return header.ToString();
    }

    private async Task<IResult> PostAsync(HttpRequest request, string type, string prefix, string[] allowed, string[] required,
        Func<Form, (Dictionary<string, object?>? Fields, IResult? Error)> build)
    {
        if (Refused(request) is { } refused) return refused;
        if (!request.HasFormContentType || !request.ContentType!.StartsWith("application/x-www-form-urlencoded", StringComparison.Ordinal))
            return Error(400, "invalid_request_error", null, "Invalid request: the body must be application/x-www-form-urlencoded.", null);
        var key = request.Headers["Idempotency-Key"].ToString();
        if (key.Length is 0 or > 255)
            return Error(400, "invalid_request_error", null, "This fake requires an Idempotency-Key (1 to 255 characters) on every POST, as AiGate always sends one.", null);
        var form = new Form(await request.ReadFormAsync());
        var formHash = form.Hash();
        if (_replays.TryGetValue($"{request.Path}|{key}", out var replay))
            return replay.FormHash == formHash
                ? new WithHeader(Results.Json(replay.Body), "Idempotent-Replayed", "true")
                : Error(400, "idempotency_error", null,
                    $"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request.", null);
        if (Forced() is { } forced) return forced;
        if (form.Unknown(null, allowed) is { } unknown) return unknown;
        foreach (var name in required)
            if (form.String(name) is null)
                return Error(400, "invalid_request_error", "parameter_missing", $"Missing required param: {name}.", name);
        foreach (var (name, value) in form.Metadata("metadata").Concat(form.Metadata("subscription_data[metadata]")).Concat(form.Metadata("payment_intent_data[metadata]")))
            if (name.Length > 40 || value.Length > 500)
                return Error(400, "invalid_request_error", null, "Metadata keys can be at most 40 characters and values at most 500.", "metadata");

        var (fields, error) = build(form);
        if (error is not null) return error;
        var id = $"{prefix}_{Interlocked.Increment(ref _counter):D6}";
        fields!["id"] = id;
        fields["object"] = type;
        fields["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        fields["livemode"] = false;
        var pages = _servesPages ? BaseUrl.GetLeftPart(UriPartial.Authority) : null;
        if (type == "checkout.session") fields["url"] = $"{pages ?? "https://checkout.stripe.com"}/c/pay/{id}";
        if (type == "billing_portal.session") fields["url"] = $"{pages ?? "https://billing.stripe.com"}/p/session/{id}";
        Objects[id] = fields;
        _replays[$"{request.Path}|{key}"] = (fields, formHash);
        return Results.Json(fields);
    }

    /// <summary>Records that <paramref name="paymentIntent"/> paid <paramref name="invoice"/> (an <c>invoice_payment</c>, as Stripe keeps since 2025-03-31).</summary>
    public void AddInvoicePayment(string invoice, string paymentIntent, long amount)
    {
        var id = $"inpay_fake_{Interlocked.Increment(ref _counter):D6}";
        Objects[id] = new()
        {
            ["id"] = id, ["object"] = "invoice_payment", ["amount_paid"] = amount, ["amount_requested"] = amount, ["currency"] = "usd", ["invoice"] = invoice,
            ["is_default"] = true, ["livemode"] = false, ["status"] = "paid", ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["payment"] = new Dictionary<string, object?> { ["type"] = "payment_intent", ["payment_intent"] = paymentIntent },
            ["status_transitions"] = new Dictionary<string, object?> { ["canceled_at"] = null, ["paid_at"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds() },
        };
    }

    /// <summary><c>GET /v1/invoice_payments</c>: filtered by <c>invoice</c> or by <c>payment[type]</c> with <c>payment[payment_intent]</c>.</summary>
    private IResult ListInvoicePayments(HttpRequest request)
    {
        if (Refused(request) is { } refused) return refused;
        if (Forced() is { } forced) return forced;
        string[] allowed = ["invoice", "payment[type]", "payment[payment_intent]", "payment[payment_record]", "limit", "starting_after", "ending_before", "status"];
        foreach (var name in request.Query.Keys)
            if (!allowed.Contains(name) && !name.StartsWith("expand[", StringComparison.Ordinal))
                return Error(400, "invalid_request_error", "parameter_unknown", $"Received unknown parameter: {name}", name);
        var query = request.Query;
        if (query.ContainsKey("payment[payment_intent]") && query["payment[type]"] != "payment_intent")
            return Error(400, "invalid_request_error", "parameter_missing", "Missing required param: payment[type].", "payment[type]");
        var limit = int.TryParse(query["limit"], CultureInfo.InvariantCulture, out var l) ? l : 10;
        var data = Objects.Values.Where(o => o["object"] as string == "invoice_payment")
            .Where(o => StringValues.IsNullOrEmpty(query["invoice"]) || o["invoice"] as string == query["invoice"])
            .Where(o => StringValues.IsNullOrEmpty(query["payment[payment_intent]"])
                || ((Dictionary<string, object?>)o["payment"]!)["payment_intent"] as string == query["payment[payment_intent]"])
            .Take(limit).ToList();
        return Results.Json(new Dictionary<string, object?> { ["object"] = "list", ["data"] = data, ["has_more"] = false, ["url"] = "/v1/invoice_payments" });
    }

    private IResult Get(HttpRequest request, string type, string id)
    {
        if (Refused(request) is { } refused) return refused;
        if (Forced() is { } forced) return forced;
        foreach (var name in request.Query.Keys)
            if (!name.StartsWith("expand[", StringComparison.Ordinal))
                return Error(400, "invalid_request_error", "parameter_unknown", $"Received unknown parameter: {name}", name);
        return Objects.TryGetValue(id, out var found) && found["object"] as string == type
            ? Results.Json(found)
            : Error(404, "invalid_request_error", "resource_missing", $"No such {type}: '{id}'", "id");
    }

    /// <summary>What Stripe refuses before looking at the request: a wrong key (401) or, here, an unpinned or other API version.</summary>
    private static IResult? Refused(HttpRequest request)
    {
        if (request.Headers.Authorization.ToString() != $"Bearer {SecretKey}")
            return Error(401, "invalid_request_error", null, "Invalid API Key provided: sk_test_****", null);
        var version = request.Headers["Stripe-Version"].ToString();
        if (version != ApiVersion)
            return Error(400, "invalid_request_error", null,
                version.Length == 0 ? $"This fake requires Stripe-Version: {ApiVersion} (the version AiGate pins)." : $"Invalid Stripe API version: {version}", null);
        return null;
    }

    private IResult? Forced()
    {
        if (!_failures.TryDequeue(out var f)) return null;
        var error = Error(f.Status, f.Type, f.Code, f.Message, f.Param);
        return f.ShouldRetry is { } retry ? new WithHeader(error, "Stripe-Should-Retry", retry ? "true" : "false") : error;
    }

    private static IResult Error(int status, string type, string? code, string message, string? param) =>
        Results.Json(new { error = new { type, code, message, param, doc_url = code is null ? null : $"https://docs.stripe.com/error-codes/{code.Replace('_', '-')}" } },
            statusCode: status);

    /// <summary>A form-encoded body read with Stripe's nested-key rules: <c>a[b][0]</c> is key <c>b</c> of <c>a</c>, list index 0.</summary>
    private sealed class Form(IFormCollection form)
    {
        public string? String(string key) => form.TryGetValue(key, out var v) && !StringValues.IsNullOrEmpty(v) ? v.ToString() : null;

        public bool Has(string prefix) => form.Keys.Any(k => k == prefix || k.StartsWith(prefix + "[", StringComparison.Ordinal));

        /// <summary>The direct children of <paramref name="prefix"/> (top-level names when null) that are not in <paramref name="allowed"/>, as Stripe's 400.</summary>
        public IResult? Unknown(string? prefix, string[] allowed)
        {
            foreach (var key in form.Keys)
            {
                string? child;
                if (prefix is null) child = key.Split('[')[0];
                else if (key.StartsWith(prefix + "[", StringComparison.Ordinal)) child = key[(prefix.Length + 1)..].Split(']')[0];
                else continue;
                if (!allowed.Contains(child))
                {
                    var name = prefix is null ? child : $"{prefix}[{child}]";
                    return Error(400, "invalid_request_error", "parameter_unknown", $"Received unknown parameter: {name}", name);
                }
            }
            return null;
        }

        public Dictionary<string, string> Metadata(string prefix) =>
            form.Keys.Where(k => k.StartsWith(prefix + "[", StringComparison.Ordinal) && k.EndsWith(']') && k.IndexOf('[', prefix.Length + 1) < 0)
                .ToDictionary(k => k[(prefix.Length + 1)..^1], k => form[k].ToString());

        public string Hash() => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(
            string.Join('&', form.Keys.Order(StringComparer.Ordinal).Select(k => $"{k}={form[k]}")))));
    }

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
