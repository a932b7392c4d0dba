using System.Collections.Concurrent;
using System.Text.Json;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.Features.Email;

/// <summary>
/// Resend's <c>POST /emails</c> as documented: Bearer auth (401 missing_api_key, 403 invalid_api_key),
/// 422 for missing fields, 200 <c>{"id"}</c>, the same id again for a repeated Idempotency-Key, and
/// error bodies <c>{"statusCode","name","message"}</c>. <see cref="NextStatuses"/> forces failures (429, 500).
/// </summary>
public sealed class FakeResend : IAsyncDisposable
{
    public const string ApiKey = "re_test_123456789";
    private readonly FakeUpstream _server;
    private readonly ConcurrentDictionary<string, string> _byIdempotencyKey = new();

    public ConcurrentQueue<int> NextStatuses { get; } = new();
    /// <summary>Messages Resend "delivered": one per distinct idempotency key.</summary>
    public ConcurrentDictionary<string, JsonElement> Delivered { get; } = new();
    public TimeSpan Delay { get; set; }
    public Uri BaseUrl => _server.BaseUrl;
    public IEnumerable<FakeUpstream.RecordedRequest> Requests => _server.Requests;

    private FakeResend(FakeUpstream server) => _server = server;

    public static async Task<FakeResend> StartAsync()
    {
        FakeResend? fake = null;
        var server = await FakeUpstream.StartAsync(app => app.MapPost("/emails", (HttpRequest request) => fake!.HandleAsync(request)));
        return fake = new FakeResend(server);
    }

    private async Task<IResult> HandleAsync(HttpRequest request)
    {
        if (Delay > TimeSpan.Zero) await Task.Delay(Delay);
        var auth = request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(auth)) return Error(401, "missing_api_key", "Missing API key in the authorization header.");
        if (auth != $"Bearer {ApiKey}") return Error(403, "invalid_api_key", "API key is invalid.");
        if (NextStatuses.TryDequeue(out var forced))
            return forced switch
            {
                429 => Results.Json(new { statusCode = 429, name = "rate_limit_exceeded", message = "Too many requests. You can only make 2 requests per second." },
                    statusCode: 429).WithRetryAfter(2),
                422 => Error(422, "invalid_parameter", "Invalid `to` field."),
                _ => Error(forced, "application_error", "An unexpected error occurred."),
            };

        using var body = await JsonDocument.ParseAsync(request.Body);
        var root = body.RootElement;
        foreach (var field in new[] { "from", "to", "subject" })
            if (!root.TryGetProperty(field, out _)) return Error(422, "missing_required_field", $"Missing `{field}` field.");
        var key = request.Headers["Idempotency-Key"].ToString();
        if (key.Length is 0 or > 256) key = Guid.NewGuid().ToString();
        var id = _byIdempotencyKey.GetOrAdd(key, _ => Guid.NewGuid().ToString());
        Delivered.TryAdd(key, root.Clone());
        return Results.Json(new { id });
    }

    private static IResult Error(int status, string name, string message) => Results.Json(new { statusCode = status, name, message }, statusCode: status);

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}

internal static class ResultExtensions
{
    public static IResult WithRetryAfter(this IResult result, int seconds) => new RetryAfterResult(result, seconds);

    private sealed class RetryAfterResult(IResult inner, int seconds) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
