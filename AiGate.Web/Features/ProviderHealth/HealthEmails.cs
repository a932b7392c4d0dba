using AiGate.Web.Features.Email;

namespace AiGate.Web.Features.ProviderHealth;

/// <summary>The admin alerts of provider health, in the product's e-mail layout.</summary>
public static class HealthEmails
{
    public static EmailContent ProviderDown(string provider, string? lastError, long recentCalls, long recentFailures, string? statusUrl) =>
        EmailTemplates.Build("provider-down",
            $"AiGate: provider {provider} is down",
            $"Provider {provider} is down",
            [$"The health checks mark the provider \"{provider}\" as down. Routing now skips its routes and sends their traffic to other providers where a model has one.",
             lastError is null ? "The last probe answered, so live traffic failures decided it." : $"Last probe: {lastError}.",
             $"Live traffic in the last window: {recentFailures} of {recentCalls} calls failed."],
            statusUrl is null ? null : ("Open the status page", statusUrl),
            "Probing continues; you will get one more e-mail when the provider recovers.");

    public static EmailContent ProviderRecovered(string provider, HealthState now, string? statusUrl) =>
        EmailTemplates.Build("provider-recovered",
            $"AiGate: provider {provider} has recovered",
            $"Provider {provider} has recovered",
            [$"The provider \"{provider}\" answers its health checks again and is now {now.ToString().ToLowerInvariant()}. Routing sends it traffic again."],
            statusUrl is null ? null : ("Open the status page", statusUrl),
            "You got this because you are an AiGate admin.");
}
