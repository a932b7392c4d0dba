using System.Xml.Linq;
using AiGate.Web.Data;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace AiGate.Web.Infrastructure;

/// <summary>
/// One key of the ASP.NET Data Protection key ring. Kept in PostgreSQL so that every instance
/// protects and unprotects cookies, antiforgery tokens and Identity links with the same keys.
/// (Microsoft.AspNetCore.DataProtection.EntityFrameworkCore is not in our package source; this is
/// the same idea in a few lines.)
/// </summary>
public sealed class DataProtectionKeyRow
{
    public int Id { get; set; }
    public string? FriendlyName { get; set; }
    public required string Xml { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<DataProtectionKeyRow>
    {
        public void Configure(EntityTypeBuilder<DataProtectionKeyRow> b)
        {
            b.ToTable("data_protection_keys");
            b.Property(k => k.FriendlyName).HasMaxLength(200);
        }
    }
}

/// <summary>The key ring's storage: reads every row, appends new ones (keys are never updated in place).</summary>
public sealed class DbXmlRepository(IServiceScopeFactory scopes) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        return db.DataProtectionKeys.AsNoTracking().OrderBy(k => k.Id).Select(k => k.Xml).ToList()
            .Select(XElement.Parse).ToList();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        db.DataProtectionKeys.Add(new DataProtectionKeyRow
        {
            FriendlyName = friendlyName,
            Xml = element.ToString(SaveOptions.DisableFormatting),
        });
        db.SaveChanges();
    }
}
