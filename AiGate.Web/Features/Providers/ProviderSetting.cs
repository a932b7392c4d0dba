using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Providers;

/// <summary>
/// An admin's runtime switch for a configured provider. Keys and URLs stay in configuration; only
/// "is it used" lives here, so every instance honours it (the catalogue drops a disabled provider's routes).
/// No row means enabled.
/// </summary>
public sealed class ProviderSetting
{
    public required string Provider { get; set; }
    public bool Enabled { get; set; } = true;
    public DateTimeOffset ChangedAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<ProviderSetting>
    {
        public void Configure(EntityTypeBuilder<ProviderSetting> b)
        {
            b.ToTable("provider_settings");
            b.HasKey(p => p.Provider);
            b.Property(p => p.Provider).HasMaxLength(64);
        }
    }
}
