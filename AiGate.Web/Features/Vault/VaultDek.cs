using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Vault;

/// <summary>
/// A data-encryption key of one owner (<c>platform</c>, later <c>account:{id}</c> for BYOK), stored only wrapped
/// by a KEK (<see cref="SecretBox"/>, associated data = owner and version). <see cref="KekId"/> is the wrapping
/// KEK's fingerprint: what <c>vault-status</c> counts and <c>rotate-kek</c> moves. An owner may get a new DEK
/// version later; rows sealed under an older version keep naming theirs.
/// </summary>
public sealed class VaultDek
{
    public required string Owner { get; set; }
    public int Version { get; set; }
    public required byte[] Wrapped { get; set; }
    public required string KekId { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? RewrappedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<VaultDek>
    {
        public void Configure(EntityTypeBuilder<VaultDek> b)
        {
            b.ToTable("vault_deks");
            b.HasKey(d => new { d.Owner, d.Version });
            b.Property(d => d.Owner).HasMaxLength(100);
            b.Property(d => d.KekId).HasMaxLength(8);
            b.HasIndex(d => d.KekId);
        }
    }
}
