using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Billing;

/// <summary>
/// Data annotations on the section and on every plan and pack (the built-in validation does not look inside
/// lists), plus what only the whole section can say: unique ids, a free plan, and min ≤ max.
/// </summary>
internal sealed class BillingOptionsValidator : IValidateOptions<BillingOptions>
{
    public ValidateOptionsResult Validate(string? name, BillingOptions options)
    {
        var failures = new List<string>();
        Check(options, BillingOptions.Section, failures);
        for (var i = 0; i < options.Plans.Count; i++) Check(options.Plans[i], $"{BillingOptions.Section}:Plans:{i}", failures);
        for (var i = 0; i < options.CreditPacks.Count; i++) Check(options.CreditPacks[i], $"{BillingOptions.Section}:CreditPacks:{i}", failures);
        for (var i = 0; i < options.UsageTiers.Count; i++) Check(options.UsageTiers[i], $"{BillingOptions.Section}:UsageTiers:{i}", failures);
        foreach (var paid in options.UsageTiers.GroupBy(t => t.MinPaidCents).Where(g => g.Count() > 1).Select(g => g.Key))
            failures.Add($"Billing:UsageTiers has MinPaidCents {paid} more than once.");

        if (options.Plans.Count == 0) failures.Add("Billing:Plans lists no plan.");
        else if (!options.Plans.Any(p => p.MonthlyPriceCents == 0)) failures.Add("Billing:Plans needs a plan with a zero price (where lapsed subscriptions fall back).");
        foreach (var id in options.Plans.GroupBy(p => p.Id, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key))
            failures.Add($"Billing:Plans has the id '{id}' more than once.");
        foreach (var id in options.CreditPacks.GroupBy(p => p.Id, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key))
            failures.Add($"Billing:CreditPacks has the id '{id}' more than once.");
        if (options.CustomAmountMinCents > options.CustomAmountMaxCents)
            failures.Add("Billing:CustomAmountMinCents is larger than Billing:CustomAmountMaxCents.");

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Check(object item, string path, List<string> failures)
    {
        var results = new List<ValidationResult>();
        if (Validator.TryValidateObject(item, new ValidationContext(item), results, validateAllProperties: true)) return;
        failures.AddRange(results.Select(r => $"{path}: {r.ErrorMessage}"));
    }
}
