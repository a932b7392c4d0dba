using Microsoft.AspNetCore.Identity;

namespace AiGate.Web.Data;

/// <summary>A person who signs in to AiGate. Keys, credits and usage hang off this id.</summary>
public sealed class AppUser : IdentityUser<Guid>
{
    public DateTimeOffset CreatedAt { get; set; }
}
