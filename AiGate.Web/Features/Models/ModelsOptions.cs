using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Models;

public sealed class ModelsOptions
{
    public const string Section = "Models";

    /// <summary>Our price = provider price × margin; 18000 basis points = ×1.8 (DESIGN.md). A model may override it.</summary>
    [Range(10_000, 1_000_000)]
    public int DefaultMarginBasisPoints { get; set; } = 18_000;
}
