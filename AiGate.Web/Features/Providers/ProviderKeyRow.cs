using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// A platform key for an upstream provider, sealed in the vault (owner <c>platform</c>, purpose
/// <see cref="Purpose"/>, bound to this row's id). Only <see cref="Last4"/> is ever shown again. A key that
/// answers 401/403 becomes <c>disabled</c> (an admin may re-enable it); a retired key is never used again.
/// </summary>
public sealed class ProviderKeyRow
{
    public const string Purpose = "provider-key";

    public Guid Id { get; set; }
    public required string Provider { get; set; }
    public required string Label { get; set; }
    public required byte[] Secret { get; set; }
    /// <summary>The version of the platform DEK that sealed <see cref="Secret"/>.</summary>
    public int KeyVersion { get; set; }
    public required string Last4 { get; set; }
    public required string Status { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public required string CreatedBy { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? LastErrorAt { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset? DisabledAt { get; set; }
    public DateTimeOffset? RetiredAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<ProviderKeyRow>
    {
        public void Configure(EntityTypeBuilder<ProviderKeyRow> b)
        {
            b.ToTable("provider_keys");
            b.Property(k => k.Provider).HasMaxLength(64);
            b.Property(k => k.Label).HasMaxLength(100);
            b.Property(k => k.Last4).HasMaxLength(4);
            b.Property(k => k.Status).HasMaxLength(16);
            b.Property(k => k.CreatedBy).HasMaxLength(256);
            b.Property(k => k.LastError).HasMaxLength(300);
            b.HasIndex(k => new { k.Provider, k.Status });
        }
    }
}

public static class ProviderKeyStatus
{
    public const string Active = "active";
    public const string Disabled = "disabled";
    public const string Retired = "retired";
}
