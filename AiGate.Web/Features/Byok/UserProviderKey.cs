using AiGate.Web.Data;
using AiGate.Web.Features.Organizations;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Byok;

/// <summary>
/// A provider key a user brought (BYOK, issue 14), sealed in the vault under the account's DEK (owner
/// <c>account:{user id}</c>, purpose <see cref="Purpose"/>, bound to this row's id). Only <see cref="Last4"/> is ever
/// shown again. <see cref="Kind"/> is <c>openai</c>, <c>anthropic</c> or <c>gemini</c> (at most one each per account;
/// calls to that kind's models then go upstream with it), or <c>custom</c>: an OpenAI-compatible
/// <see cref="BaseUrl"/>, called as <c>byok/{label}/{upstream model}</c>.
/// </summary>
public sealed class UserProviderKey
{
    public const string Purpose = "byok-key";

    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    public required string Kind { get; set; }
    /// <summary>Unique per account; for a custom endpoint, the middle part of <c>byok/{label}/{model}</c>.</summary>
    public required string Label { get; set; }
    /// <summary>For <c>custom</c> only: checked by <see cref="OutboundAddressGuard"/> when saved and on every connection.</summary>
    public string? BaseUrl { get; set; }
    public required byte[] Secret { get; set; }
    /// <summary>The version of the account's DEK that sealed <see cref="Secret"/>.</summary>
    public int KeyVersion { get; set; }
    public required string Last4 { get; set; }
    /// <summary>When the provider refuses this key, retry the call with the platform's keys (billed at the normal price).</summary>
    public bool FallbackToPlatform { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>The provider's last refusal of the key (status only, never its message, which may quote the key).</summary>
    public DateTimeOffset? LastErrorAt { get; set; }
    public string? LastError { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<UserProviderKey>
    {
        public void Configure(EntityTypeBuilder<UserProviderKey> b)
        {
            b.ToTable("user_provider_keys");
            b.Property(k => k.Kind).HasMaxLength(16);
            b.Property(k => k.Label).HasMaxLength(32);
            b.Property(k => k.BaseUrl).HasMaxLength(500);
            b.Property(k => k.Last4).HasMaxLength(4);
            b.Property(k => k.LastError).HasMaxLength(300);
            b.HasIndex(k => new { k.UserId, k.Label }).IsUnique();
            b.HasOne<Organization>().WithMany().HasForeignKey(k => k.UserId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

public static class ByokKinds
{
    public const string OpenAi = "openai";
    public const string Anthropic = "anthropic";
    public const string Gemini = "gemini";
    public const string Custom = "custom";

    public static readonly string[] All = [OpenAi, Anthropic, Gemini, Custom];
}
