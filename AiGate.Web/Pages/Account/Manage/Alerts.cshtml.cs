using System.ComponentModel.DataAnnotations;
using AiGate.Web.Data;
using AiGate.Web.Features.Accounts;
using AiGate.Web.Features.Alerts;
using AiGate.Web.Features.Organizations;
using AiGate.Web.Features.Usage;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace AiGate.Web.Pages.Account.Manage;

/// <summary>
/// <c>/Account/Manage/Alerts</c>: the signed-in user's monthly budget, which budget e-mails they get
/// (70, 90, 100 %), the hard stop at 100 %, and the low-balance e-mail. Only ever the signed-in user's
/// own row (there is no id in the URL). Saving re-evaluates the hard stop at once, so raising the
/// budget lifts a stop on every instance within moments.
/// </summary>
[RequiresOrg(OrgPermission.ManageAlerts)]
public sealed class AlertsModel(AppDbContext db, AlertPreferencesReader reader, UsageQueries usage, BudgetStops stops, TimeProvider clock, OrgContext orgs) : PageModel
{
    [BindProperty] public InputModel Input { get; set; } = new();
    [TempData] public string? StatusMessage { get; set; }
    public BudgetStatus Status { get; private set; } = null!;
    /// <summary>The hard stop is in force: the set the gateway enforces, not a recomputation of its rule.</summary>
    public bool Stopped => stops.Find(orgs.Current.Id) is not null;

    public async Task OnGetAsync(CancellationToken ct)
    {
        Status = await reader.GetStatusAsync(orgs.Current.Id, clock.GetUtcNow(), null, ct);
        Input = InputModel.From(Status.Preferences);
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var orgId = orgs.Current.Id;
        var now = clock.GetUtcNow();
        if (Input.LowBalanceEnabled && Input.LowBalanceUsd is null)
            ModelState.AddModelError("Input.LowBalanceUsd", "Enter the amount, or untick the low-balance e-mail.");
        CheckCents(Input.MonthlyBudgetUsd, "Input.MonthlyBudgetUsd");
        CheckCents(Input.LowBalanceUsd, "Input.LowBalanceUsd");
        if (!ModelState.IsValid)
        {
            Status = await reader.GetStatusAsync(orgId, now, null, ct);
            return Page();
        }

        var period = BudgetStatus.PeriodOf(now);
        var spend = await usage.MonthSpendAsync(orgId, period, ct);
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            var row = await db.Set<AlertSettings>().FirstOrDefaultAsync(s => s.UserId == orgId, ct);
            if (row is null) db.Add(row = new AlertSettings { UserId = orgId });
            row.MonthlyBudgetMicros = ToMicros(Input.MonthlyBudgetUsd);
            row.Notify70 = Input.Notify70;
            row.Notify90 = Input.Notify90;
            row.Notify100 = Input.Notify100;
            row.HardStop = Input.HardStop;
            row.LowBalanceEnabled = Input.LowBalanceEnabled;
            // A switched-off low-balance e-mail keeps its last amount, so switching it on again restores it.
            row.LowBalanceMicros = ToMicros(Input.LowBalanceUsd) ?? (row.LowBalanceMicros > 0 ? row.LowBalanceMicros : AlertPreferences.DefaultLowBalanceMicros);
            row.UpdatedAt = now;
            await db.SaveChangesAsync(ct);
            await BudgetStops.SyncAsync((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)tx.GetDbTransaction(),
                period, [(orgId, spend)], onlyThese: true, now, ct);
            await tx.CommitAsync(ct);
        }
        await stops.ReloadAsync(ct);   // this instance at once; the others on the notice
        StatusMessage = "Your alert settings were saved.";
        return RedirectToPage();
    }

    private void CheckCents(decimal? usd, string field)
    {
        if (usd is { } value && decimal.Round(value, 2) != value)
            ModelState.AddModelError(field, "Use whole cents (at most two decimals).");
    }

    private static long? ToMicros(decimal? usd) => usd is { } value ? Features.Credits.Money.FromUsd(value) : null;

    public sealed class InputModel
    {
        [Display(Name = "Monthly budget (USD)")]
        [Range(typeof(decimal), "0.01", "1000000", ErrorMessage = "The budget must be between $0.01 and $1,000,000 (or empty for the default).")]
        public decimal? MonthlyBudgetUsd { get; set; }

        [Display(Name = "E-mail me at 70 % of my budget")]
        public bool Notify70 { get; set; }

        [Display(Name = "E-mail me at 90 % of my budget")]
        public bool Notify90 { get; set; }

        [Display(Name = "E-mail me at 100 % of my budget")]
        public bool Notify100 { get; set; }

        [Display(Name = "Hard stop: refuse API requests (402) once the month's spend reaches the budget")]
        public bool HardStop { get; set; }

        [Display(Name = "E-mail me when my balance falls under an amount")]
        public bool LowBalanceEnabled { get; set; }

        [Display(Name = "Low-balance amount (USD)")]
        [Range(typeof(decimal), "0.01", "100000", ErrorMessage = "The amount must be between $0.01 and $100,000.")]
        public decimal? LowBalanceUsd { get; set; }

        public static InputModel From(AlertPreferences p) => new()
        {
            MonthlyBudgetUsd = p.MonthlyBudgetMicros is { } b ? b / 1_000_000m : null,
            Notify70 = p.Notify70, Notify90 = p.Notify90, Notify100 = p.Notify100, HardStop = p.HardStop,
            LowBalanceEnabled = p.LowBalanceEnabled, LowBalanceUsd = p.LowBalanceMicros / 1_000_000m,
        };
    }
}
