using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace AiGate.Web.Pages.Activity;

/// <summary>
/// One call of the signed-in account (404 for any other id, another account's included, and for a plain member another member's): tokens, the price per 1M
/// tokens, the cost formula with its numbers, latency and time to first token, provider and route, status, and whether
/// the tokens were reported by the provider or estimated by us. The usage row keeps tokens and the charge, not the
/// prices of the moment, so the formula uses the catalogue's current price and says so when that no longer gives the
/// recorded charge.
/// </summary>
[Authorize(Policy = AccountPolicies.ConfirmedEmail)]
[RequiresOrg(OrgPermission.UseOwnKeys)]
public sealed class RequestModel(AppDbContext db, RequestLog log, ModelCatalog catalog, OrgContext orgs) : PageModel
{
    public RequestLogRow Row { get; private set; } = null!;
    public ModelPricing? Pricing { get; private set; }
    public string? UpstreamModel { get; private set; }
    /// <summary>The charge the current price gives for the call's tokens (null without a price).</summary>
    public long? RecomputedMicros { get; private set; }
    public long? ListCostMicros { get; private set; }

    public async Task<IActionResult> OnGetAsync(string requestId, CancellationToken ct)
    {
        // A plain member finds only the calls of their own keys: another member's request id is a 404, as another organization's is.
        if (await log.FindAsync(orgs.Current.Id, requestId, ct, orgs.Current.UsageMember) is not { } row) return NotFound();
        Row = row;
        // The route as the catalogue has it now, disabled or not (the live catalogue holds only the routes in service).
        UpstreamModel = await db.Set<ModelRoute>().AsNoTracking().Where(r => r.ModelId == row.Model && r.Provider == row.Provider)
            .OrderBy(r => r.Priority).Select(r => r.UpstreamModel).FirstOrDefaultAsync(ct);
        if (await catalog.FindAsync(row.Model, ct) is { } model)
        {
            if (model.Pricing is { } pricing)
            {
                Pricing = pricing;
                var usage = new TokenUsage(row.PromptTokens, row.CompletionTokens, row.CachedTokens);
                RecomputedMicros = pricing.CostMicros(usage);
                ListCostMicros = pricing.ProviderCostMicros(usage);
            }
        }
        return Page();
    }

    /// <summary>What a status means for the caller; the usage row keeps the status, the upstream's message went to the client.</summary>
    public static string Describe(int status) => status switch
    {
        < 400 => "Succeeded.",
        400 => "The request was refused as invalid (by us or by the provider).",
        401 or 403 => "The provider refused the request's credentials or access.",
        402 => "Refused for insufficient credits.",
        404 => "The provider did not find the model or route.",
        408 or 504 => "The provider did not answer in time.",
        413 => "The request was too large.",
        429 => "The provider rate-limited the request.",
        499 => "The client went away before the answer was complete; what was produced is billed.",
        502 => "The provider's answer failed or could not be reached.",
        503 => "The provider was unavailable.",
        >= 500 => "The provider failed.",
        _ => "The request failed.",
    };
}
