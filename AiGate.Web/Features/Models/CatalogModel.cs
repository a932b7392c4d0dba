using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Features.Models;

/// <summary>
/// A model as the catalogue sells it. Prices are the provider's list prices in micro-USD per
/// million tokens; what users pay is that times the margin (<see cref="ModelPricing"/>). A model
/// with no input or output price is never served: it would be billed at $0.
/// </summary>
public sealed class CatalogModel
{
    /// <summary>Public id, <c>provider/model</c>: "openai/gpt-4o-mini".</summary>
    public required string Id { get; set; }
    public required string Name { get; set; }
    /// <summary>One of <see cref="ModelKinds.All"/>: which endpoint serves it and which price columns it needs.</summary>
    public required string Kind { get; set; }
    /// <summary>Who makes it ("openai", "anthropic", "google"): the <c>owned_by</c> of /api/v1/models.</summary>
    public required string OwnedBy { get; set; }
    public int ContextLength { get; set; }
    /// <summary>Most output tokens one response may have; also the reservation cap when a request sets no max_tokens.</summary>
    public int MaxOutputTokens { get; set; }
    public long? InputMicrosPerMTok { get; set; }
    public long? OutputMicrosPerMTok { get; set; }
    public long? CachedInputMicrosPerMTok { get; set; }
    /// <summary>Image models: list price per image by size and quality, a JSON array of <c>{"size","quality","micros"}</c> (<see cref="ImagePriceTable"/>).</summary>
    public string? ImagePrices { get; set; }
    /// <summary>Speech models: list price per million input characters.</summary>
    public long? MicrosPerMChar { get; set; }
    /// <summary>Transcription models: list price per minute of audio.</summary>
    public long? MicrosPerMinute { get; set; }
    /// <summary>Moderation models: list price per request; null = free.</summary>
    public long? MicrosPerRequest { get; set; }
    /// <summary>Realtime models: audio tokens per million (text tokens use the input and output prices).</summary>
    public long? AudioInputMicrosPerMTok { get; set; }
    public long? AudioOutputMicrosPerMTok { get; set; }
    /// <summary>Per-model margin in basis points (18000 = ×1.8); null = the global default.</summary>
    public int? MarginBasisPoints { get; set; }
    /// <summary>Other names that resolve to this model ("gpt-4o-mini").</summary>
    public List<string> Aliases { get; set; } = [];
    public List<string> Modalities { get; set; } = [];
    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; }
    public List<ModelRoute> Routes { get; set; } = [];

    internal sealed class Configuration : IEntityTypeConfiguration<CatalogModel>
    {
        public void Configure(EntityTypeBuilder<CatalogModel> b)
        {
            b.ToTable("models");
            b.Property(m => m.Id).HasMaxLength(128);
            b.Property(m => m.Name).HasMaxLength(128);
            b.Property(m => m.Kind).HasMaxLength(16);
            b.Property(m => m.OwnedBy).HasMaxLength(64);
            b.Property(m => m.InputMicrosPerMTok).HasColumnName("input_micros_per_mtok");
            b.Property(m => m.OutputMicrosPerMTok).HasColumnName("output_micros_per_mtok");
            b.Property(m => m.CachedInputMicrosPerMTok).HasColumnName("cached_input_micros_per_mtok");
            b.Property(m => m.ImagePrices).HasColumnType("jsonb");
            b.Property(m => m.MicrosPerMChar).HasColumnName("micros_per_mchar");
            b.Property(m => m.AudioInputMicrosPerMTok).HasColumnName("audio_input_micros_per_mtok");
            b.Property(m => m.AudioOutputMicrosPerMTok).HasColumnName("audio_output_micros_per_mtok");
            b.HasMany(m => m.Routes).WithOne().HasForeignKey(r => r.ModelId).OnDelete(DeleteBehavior.Cascade);
        }
    }
}

/// <summary>One way to serve a model: a provider (by configured name) and the model's name there.</summary>
public sealed class ModelRoute
{
    public long Id { get; set; }
    public required string ModelId { get; set; }
    /// <summary>The provider's configured name (<c>Providers__&lt;name&gt;__…</c>): "openai", "anthropic", "gemini", "echo"…</summary>
    public required string Provider { get; set; }
    public required string UpstreamModel { get; set; }
    /// <summary>Lower is tried first; routes of equal priority share traffic by weight.</summary>
    public int Priority { get; set; }
    public int Weight { get; set; } = 1;
    public bool Enabled { get; set; } = true;

    internal sealed class Configuration : IEntityTypeConfiguration<ModelRoute>
    {
        public void Configure(EntityTypeBuilder<ModelRoute> b)
        {
            b.ToTable("model_routes");
            b.Property(r => r.ModelId).HasMaxLength(128);
            b.Property(r => r.Provider).HasMaxLength(64);
            b.Property(r => r.UpstreamModel).HasMaxLength(128);
            b.HasIndex(r => new { r.ModelId, r.Provider, r.UpstreamModel }).IsUnique();
        }
    }
}
