using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// The money steps every media endpoint (images, speech, transcriptions, moderations) keeps, in order: the worst case
/// reserved before anything goes upstream, routing, the route's failure written in OpenAI's envelope, the endpoint's
/// relay, and on every path the settlement and usage row. The relay says what the call costs through
/// <see cref="MediaCharge"/> as soon as the provider has done the work (before writing to the client), so a client
/// that leaves, or a write that fails, is still billed; a relay that charges nothing has written its 502.
/// </summary>
public sealed class MediaPipeline(UpstreamRouter router, Metering metering)
{
    /// <summary>What the answered call costs, set by the relay once the provider has done the work.</summary>
    public sealed class MediaCharge
    {
        internal MediaCost? Cost { get; private set; }

        public void Bill(MediaCost cost) => Cost = cost;
    }

    public delegate Task Relay(RouteResult route, MediaCharge charge);

    public async Task RunAsync(HttpContext context, KeyIdentity key, ResolvedModel model, long worstCaseMicros, bool stream, long started,
        Func<Provider, string, string?, HttpRequestMessage?> createRequest, Relay relay)
    {
        if (await metering.ReserveOrRefuseAsync(context, key, worstCaseMicros) is not { } reservation) return;
        var outcome = new MeteredOutcome("", null, StatusCodes.Status502BadGateway, stream, null, Cost: default(MediaCost));
        var charge = new MediaCharge();
        try
        {
            using var route = await router.SendAsync(model, stream, createRequest, context.RequestAborted);
            if (await GatewayResponses.WriteRouteFailureAsync(context, route))
            {
                outcome = outcome with { Provider = route.Provider?.Name ?? "", Status = context.Response.StatusCode };
                return;
            }
            outcome = outcome with { Provider = route.Provider!.Name, TimeToFirstByteMs = (int)route.UpstreamTime.TotalMilliseconds };
            context.Response.Headers["X-AiGate-Provider"] = route.Provider.Name;
            await relay(route, charge);
        }
        finally
        {
            if (charge.Cost is { } cost) outcome = outcome with { Usage = new TokenUsage(0, 0), Status = StatusCodes.Status200OK, Cost = cost };
            await metering.CompleteAsync(context, reservation, key, model, outcome, started);
        }
    }
}
