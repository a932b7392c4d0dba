using System.Diagnostics;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>What a route test saw: whether the provider answered, in how long, and what it said (or what went wrong).</summary>
public sealed record RouteTestResult(bool Ok, int LatencyMs, string? Provider, string Answer);

/// <summary>
/// The admin's "test" button for one route: a 1-token, non-streamed chat call through the real router and
/// the provider's adapter, against the provider itself. No key, no reservation, no ledger entry: no user is
/// charged (the provider bills the platform for a token or so). Works on a disabled route or provider too, so
/// an admin can check one before switching it on.
/// </summary>
public sealed class RouteTester(UpstreamRouter router, IOptions<GatewayOptions> options)
{
    public async Task<RouteTestResult> TestAsync(CatalogModel model, ModelRoute route, CancellationToken ct)
    {
        if (router.Adapter(route.Provider) is null)
            return new RouteTestResult(false, 0, route.Provider, $"No provider named '{route.Provider}' is configured on this instance.");
        var resolved = new ResolvedModel(model.Id, model.Name, model.Kind, model.OwnedBy, model.ContextLength, model.MaxOutputTokens,
            new ModelPricing(0, 0, 0, 10_000), [route], model.CreatedAt);
        var body = new JsonObject
        {
            ["model"] = model.Id,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Reply with one word: OK" }),
            ["max_tokens"] = 1,
        };
        var call = new ChatCall
        {
            Body = body, Model = resolved, Stream = false, ClientWantsUsage = false, CompletionId = PrefixedId.New("chatcmpl-test-"),
            Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), MaxOutputTokens = 1, ClientSetMaxTokens = true, OutputBound = 1, Choices = 1, MediaTokensBound = 0,
        };
        var started = Stopwatch.GetTimestamp();
        using var result = await router.SendAsync(resolved, false, (provider, upstreamModel, apiKey) => provider.Adapter.CreateChatRequest(provider, call, upstreamModel, apiKey), ct);
        if (result.Outcome != RouteOutcome.Answered)
        {
            var why = result.Outcome switch
            {
                RouteOutcome.Rejected => $"the provider refused the request ({result.UpstreamStatus}): "
                    + (result.Provider?.Adapter.ReadErrorMessage(result.ErrorBody) ?? "no message"),
                RouteOutcome.TimedOut => "the provider did not answer in time",
                RouteOutcome.Unavailable => "the provider's circuit breaker is open",
                RouteOutcome.ClientAborted => "the test was cancelled",
                _ => "the provider failed (connection error, 5xx or 429) on every attempt",
            };
            return new RouteTestResult(false, Elapsed(started), result.Provider?.Name ?? route.Provider, $"Failed after {result.Attempts} attempt(s): {why}.");
        }
        var bytes = await GatewayResponses.ReadBeforeDeadlineAsync(result, options.Value.MaxUpstreamResponseBytes);
        var latency = Elapsed(started);
        if (bytes is null) return new RouteTestResult(false, latency, result.Provider!.Name, "The answer was too large or broke off.");
        try
        {
            var completion = result.Provider!.Adapter.ReadChatCompletion(bytes, call);
            var text = completion.Response["choices"]?[0]?["message"]?["content"]?.GetValue<string>() ?? "";
            return new RouteTestResult(true, latency, result.Provider.Name, text.Length > 200 ? text[..200] : text);
        }
        catch (UpstreamProtocolException ex)
        {
            return new RouteTestResult(false, latency, result.Provider!.Name, "The provider answered in an unexpected format: " + ex.Message);
        }
    }

    private static int Elapsed(long started) => (int)Stopwatch.GetElapsedTime(started).TotalMilliseconds;
}
