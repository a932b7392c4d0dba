using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// One upstream provider from configuration: <c>Providers__&lt;name&gt;__Kind|BaseUrl|ApiKey</c>. The
/// name is what model routes refer to; a provider named like a seeded one (<c>openai</c>,
/// <c>anthropic</c>, <c>gemini</c>) serves that provider's seeded models.
/// </summary>
public sealed class ProviderOptions
{
    /// <summary><c>openai</c> (and any OpenAI-compatible API), <c>anthropic</c>, <c>gemini</c> or <c>echo</c> (local only).</summary>
    public string Kind { get; set; } = "";

    /// <summary>As each provider's official SDK writes it: <c>https://api.openai.com/v1</c>, <c>https://api.anthropic.com</c>, <c>https://generativelanguage.googleapis.com</c>.</summary>
    public string? BaseUrl { get; set; }

    public string? ApiKey { get; set; }

    /// <summary>
    /// An <c>openai</c>-kind provider that serves OpenAI's Responses API (<c>POST {BaseUrl}/responses</c>); unset, only
    /// api.openai.com does. The others get /api/v1/responses translated into a chat completion.
    /// </summary>
    public bool? ResponsesApi { get; set; }

    /// <summary>Longest wait for a streamed response's headers (time to first byte), per attempt.</summary>
    [Range(1, 600)]
    public int TimeoutSeconds { get; set; } = 60;

    /// <summary>
    /// Longest a non-streamed call may take, headers and body together: a provider sends a non-streamed
    /// answer's headers only when the whole generation is done, so this is a generation deadline, not
    /// a time to first byte.
    /// </summary>
    [Range(1, 3600)]
    public int NonStreamTimeoutSeconds { get; set; } = 600;

    /// <summary>Longest silence between two chunks of a streamed response.</summary>
    [Range(1, 600)]
    public int StreamIdleSeconds { get; set; } = 60;

    /// <summary>
    /// <c>1.1</c> (default) or <c>2</c>: HTTP/2 multiplexes many calls over few connections. Over https it is
    /// negotiated (falling back to 1.1); over plain http it is HTTP/2 with prior knowledge, for upstreams on a
    /// private network that speak it (docs/performance.md).
    /// </summary>
    public string HttpVersion { get; set; } = "1.1";
}

public enum ProviderKind { OpenAi, Anthropic, Gemini, Echo }
