using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Email;

/// <summary>E-mail settings ("Email"): who mails come from, where their links point, how sending retries.</summary>
public sealed class EmailOptions
{
    public const string Section = "Email";

    /// <summary>The sender, e.g. <c>AiGate &lt;no-reply@example.com&gt;</c> (a domain verified at Resend). Required in Production.</summary>
    [Required]
    public string From { get; set; } = "AiGate <no-reply@aigate.localhost>";

    /// <summary>
    /// The site's public address for links in e-mails (<c>https://aigate.example.com</c>). Required in
    /// Production so a forged Host header can never put someone else's domain into a reset link;
    /// elsewhere the request's own address is used when it is empty.
    /// </summary>
    public string? BaseUrl { get; set; }

    /// <summary>Attempts before a row that keeps failing (429, 5xx, network) is marked Failed.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 8;

    /// <summary>How often the outbox job looks for due rows (it is also triggered right after a mail is enqueued).</summary>
    [Range(1, 3600)]
    public int PollSeconds { get; set; } = 15;
}

/// <summary>Resend's REST API ("Resend"). Without an API key, mail is delivered to the local mailbox (never in Production).</summary>
public sealed class ResendOptions
{
    public const string Section = "Resend";

    /// <summary>A Resend API key (<c>re_…</c>), from the environment only (<c>Resend__ApiKey</c>).</summary>
    public string? ApiKey { get; set; }

    /// <summary>The API's base address; tests point it at a fake Resend server.</summary>
    [Required]
    public Uri ApiBase { get; set; } = new("https://api.resend.com");
}
