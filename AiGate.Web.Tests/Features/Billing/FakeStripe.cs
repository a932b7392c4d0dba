using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
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

    private FakeStripe(FakeUpstream server) => _server = server;

    public static async Task<FakeStripe> StartAsync()
    {
        FakeStripe? fake = null;
        var server = await FakeUpstream.StartAsync(app =>
        {
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
        return fake = new FakeStripe(server);
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
        if (type == "checkout.session") fields["url"] = $"https://checkout.stripe.com/c/pay/{id}";
        if (type == "billing_portal.session") fields["url"] = $"https://billing.stripe.com/p/session/{id}";
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
