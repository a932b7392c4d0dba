using AiGate.Web.Features.Organizations;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Keys;

/// <summary>An API key. Only its hash is stored; the secret is shown once, when it is issued.</summary>
public sealed class ApiKey
{
    public Guid Id { get; set; }
    /// <summary>The organization the key belongs to (its balance, plan and limits).</summary>
    public Guid OwnerId { get; set; }
    /// <summary>The member who created it: the key carries that member's budget and caps, and goes when they leave.</summary>
    public Guid CreatedBy { get; set; }
    public required string Name { get; set; }
    /// <summary>HMAC-SHA256(pepper, secret), see <see cref="ApiKeyHasher"/>.</summary>
    public required byte[] KeyHash { get; set; }
    /// <summary>"ag_live_AbCd": enough to recognise a key in lists and logs, useless to an attacker.</summary>
    public required string Prefix { get; set; }
    public required string Last4 { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? ExpiresAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
    /// <summary>Most this key may spend in total, in micro-USD; null = the account's balance is the limit.</summary>
    public long? CreditLimitMicros { get; set; }
    /// <summary>What this key has spent, in micro-USD (written with its usage, for the credit limit).</summary>
    public long SpentMicros { get; set; }
    public int? RequestsPerMinute { get; set; }
    public int? TokensPerMinute { get; set; }
    /// <summary>Public model ids this key may call; empty = all.</summary>
    public List<string> AllowedModels { get; set; } = [];
    /// <summary>Set on the old key when it was rotated: the key that replaced it.</summary>
    public Guid? ReplacedById { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<ApiKey>
    {
        public void Configure(EntityTypeBuilder<ApiKey> b)
        {
            b.ToTable("api_keys");
            b.Property(k => k.Name).HasMaxLength(64);
            b.Property(k => k.Prefix).HasMaxLength(16);
            b.Property(k => k.Last4).HasMaxLength(4);
            b.HasIndex(k => k.KeyHash).IsUnique();
            b.HasIndex(k => new { k.OwnerId, k.CreatedAt });
            b.HasIndex(k => k.CreatedBy);
            b.HasOne<Organization>().WithMany().HasForeignKey(k => k.OwnerId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}
