using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Byok;

/// <summary>Bring-your-own-key settings, bound to the <c>Byok</c> section. The fee is in <c>Billing</c> (<see cref="Billing.BillingOptions"/>).</summary>
public sealed class ByokOptions
{
    public const string Section = "Byok";

    /// <summary>Most provider keys one account may store.</summary>
    [Range(1, 1000)]
    public int MaxKeysPerAccount { get; set; } = 20;

    /// <summary>
    /// <c>host:port</c> entries (comma- or space-separated) that custom base URLs may reach even though the SSRF rules
    /// refuse them (a loopback fake in tests, a private endpoint of a private deployment), over http too. Empty by default:
    /// leave it so on a public deployment.
    /// </summary>
    public string AllowedHosts { get; set; } = "";
}
