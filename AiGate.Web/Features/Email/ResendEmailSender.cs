using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Email;

/// <summary>
/// A small typed client for Resend's <c>POST /emails</c> (the Resend SDK is not in our package source).
/// Wire format per https://resend.com/docs/api-reference/emails/send-email: JSON body with from, to,
/// subject, html, text; <c>Authorization: Bearer re_…</c>; an <c>Idempotency-Key</c> header (≤ 256 chars,
/// remembered by Resend for 24 h), here the outbox row's id. Success is 200 <c>{"id":"…"}</c>; errors are
/// <c>{"statusCode","name","message"}</c> (https://resend.com/docs/api-reference/errors).
/// </summary>
public sealed partial class ResendEmailSender(HttpClient http, IOptions<ResendOptions> options, ILogger<ResendEmailSender> logger) : IEmailSender
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<SendResult> SendAsync(OutgoingEmail email, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.Value.ApiBase, "emails"))
        {
            Content = JsonContent.Create(new SendEmailRequest(email.From, [email.To], email.Subject, email.Html, email.Text), options: Json),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Value.ApiKey);
        request.Headers.Add("Idempotency-Key", email.Id.ToString());

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, ct);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            LogUnreachable(email.Id, ex.GetType().Name);
            return new SendResult(SendOutcome.RetryLater, Error: $"Resend unreachable: {ex.GetType().Name}");
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                var sent = await ReadAsync<SendEmailResponse>(response, ct);
                return new SendResult(SendOutcome.Sent, ProviderMessageId: sent?.Id);
            }

            var error = await ReadAsync<ErrorResponse>(response, ct);
            var status = (int)response.StatusCode;
            var description = $"{status} {error?.Name ?? response.ReasonPhrase}: {error?.Message}".TrimEnd(' ', ':');
            if (description.Length > 1000) description = description[..1000];
            LogRefused(email.Id, status, error?.Name);

            // 400 (validation_error, invalid_idempotency_key) and 422 (missing or invalid fields) are about
            // this message: retrying cannot help. Everything else can get better: 429 (rate limit, daily
            // quota), 5xx, 409 (the same key still in flight) and 401/403 (a key an operator will fix).
            var permanent = response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity;
            return permanent
                ? new SendResult(SendOutcome.Rejected, Error: description)
                : new SendResult(SendOutcome.RetryLater, Error: description, RetryAfter: RetryAfter(response));
        }
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        if (response.Headers.RetryAfter is { Delta: { } delta }) return delta;
        if (response.Headers.RetryAfter is { Date: { } date }) return date - DateTimeOffset.UtcNow;
        return null;
    }

    private static async Task<T?> ReadAsync<T>(HttpResponseMessage response, CancellationToken ct) where T : class
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(Json, ct);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException)
        {
            return null;   // a proxy's HTML error page, an empty body…: the status code still decides
        }
    }

    private sealed record SendEmailRequest(
        [property: JsonPropertyName("from")] string From,
        [property: JsonPropertyName("to")] string[] To,
        [property: JsonPropertyName("subject")] string Subject,
        [property: JsonPropertyName("html")] string Html,
        [property: JsonPropertyName("text")] string Text);

    private sealed record SendEmailResponse([property: JsonPropertyName("id")] string? Id);

    private sealed record ErrorResponse(
        [property: JsonPropertyName("statusCode")] int? StatusCode,
        [property: JsonPropertyName("name")] string? Name,
        [property: JsonPropertyName("message")] string? Message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Resend unreachable for outbox e-mail {EmailId}: {Error}")]
    private partial void LogUnreachable(Guid emailId, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Resend refused outbox e-mail {EmailId}: {Status} {ErrorName}")]
    private partial void LogRefused(Guid emailId, int status, string? errorName);
}
