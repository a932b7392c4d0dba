using System.Text.Encodings.Web;

namespace AiGate.Web.Features.Email;

/// <summary>A rendered e-mail: its template name, subject, and both bodies.</summary>
public sealed record EmailContent(string Kind, string Subject, string Html, string Text);

/// <summary>
/// The product's e-mails, each in HTML (table layout with inline styles, as mail clients need) and
/// plain text. Every value put into HTML is encoded. Later features (usage alerts, dunning) add theirs here.
/// </summary>
public static class EmailTemplates
{
    public static EmailContent ConfirmEmail(string confirmUrl) => Build("confirm-email",
        "Confirm your e-mail address for AiGate",
        "Confirm your e-mail address",
        ["Thanks for signing up for AiGate. Confirm that this address is yours to finish creating your account.",
         "Until you confirm, you cannot sign in, create API keys or buy credits."],
        ("Confirm your e-mail", confirmUrl),
        "The link works for 24 hours. If you did not sign up, ignore this e-mail and no account will be created.");

    /// <summary>Sent instead of a confirmation when someone registers an address that already has an account, so the page says the same either way.</summary>
    public static EmailContent AlreadyRegistered(string loginUrl, string resetUrl) => Build("already-registered",
        "You already have an AiGate account",
        "You already have an account",
        ["Someone (hopefully you) tried to sign up for AiGate with this e-mail address, which already has an account.",
         $"If it was you, log in, or reset your password if you have forgotten it: {resetUrl}"],
        ("Log in to AiGate", loginUrl),
        "If it was not you, you can ignore this e-mail: nothing has changed.");

    public static EmailContent ResetPassword(string resetUrl) => Build("reset-password",
        "Reset your AiGate password",
        "Reset your password",
        ["We received a request to reset the password of your AiGate account. Choose a new one with the button below."],
        ("Reset your password", resetUrl),
        "The link works once, for 24 hours. If you did not ask for it, ignore this e-mail: your password stays the same.");

    public static EmailContent ConfirmEmailChange(string newAddress, string confirmUrl) => Build("confirm-email-change",
        "Confirm your new e-mail address for AiGate",
        "Confirm your new e-mail address",
        [$"You asked to change the e-mail address of your AiGate account to {newAddress}. Confirm it to make the change."],
        ("Confirm the new address", confirmUrl),
        "Until you confirm, your account keeps its current address. If you did not ask for this, ignore this e-mail.");

    public static EmailContent EmailChanged(string newAddress) => Build("email-changed",
        "The e-mail address of your AiGate account was changed",
        "Your e-mail address was changed",
        [$"The e-mail address of your AiGate account was changed to {newAddress}. Mail about your account now goes there."],
        null,
        "If you did not make this change, reset your password at once and contact support: someone else may have access to your account.");

    public static EmailContent TwoFactorEnabled() => Build("two-factor-enabled",
        "Two-factor authentication is on for your AiGate account",
        "Two-factor authentication is on",
        ["Signing in to your AiGate account now also needs a code from your authenticator app (or one of your recovery codes).",
         "Keep your recovery codes somewhere safe: they are the way back in if you lose your phone."],
        null,
        "If you did not turn it on, reset your password at once and contact support.");

    public static EmailContent TwoFactorDisabled() => Build("two-factor-disabled",
        "Two-factor authentication is off for your AiGate account",
        "Two-factor authentication is off",
        ["Signing in to your AiGate account now needs only your password. You can turn two-factor authentication on again in your account's security settings."],
        null,
        "If you did not turn it off, reset your password at once and contact support.");

    /// <summary>A budget threshold reached (usage alerts): spend, budget, the month's top models, and where to act.</summary>
    public static EmailContent UsageAlert(int threshold, long spendMicros, long budgetMicros, DateOnly period, bool hardStop,
        IReadOnlyList<(string Model, long CostMicros)> topModels, string buyUrl, string settingsUrl)
    {
        var month = period.ToString("MMMM yyyy", System.Globalization.CultureInfo.InvariantCulture);
        var budget = $"${Credits.Money.UsdDisplay(budgetMicros)}";
        var spend = $"${Credits.Money.UsdDisplay(spendMicros)}";
        string[] paragraphs = threshold >= 100
            ? [$"Your AiGate spend for {month} has reached your monthly budget of {budget}: {spend} so far.",
               hardStop
                   ? "Your hard stop is on, so API requests are now refused (HTTP 402) until the month ends (UTC) or you raise your budget."
                   : "Requests keep working while you have credits; turn on the hard stop in your alert settings if you want them to stop at the budget."]
            : [$"Your AiGate spend for {month} has passed {threshold} % of your monthly budget of {budget}: {spend} so far.",
               "Nothing has changed for your API keys; this is a heads-up so the rest of the month holds no surprise."];
        var facts = new List<(string, string)> { ("Spent this month", spend), ("Monthly budget", budget) };
        facts.AddRange(topModels.Select((m, i) => (i == 0 ? "Top models" : "", $"{m.Model}: ${Credits.Money.UsdDisplay(m.CostMicros)}")));
        return Build($"usage-alert-{threshold}",
            threshold >= 100 ? $"You have reached your AiGate budget for {month}" : $"You have used {threshold} % of your AiGate budget for {month}",
            threshold >= 100 ? "Monthly budget reached" : $"{threshold} % of your monthly budget used",
            [.. paragraphs, $"To raise your budget or choose which alerts you get, open your alert settings: {settingsUrl}"],
            ("Buy credits", buyUrl),
            "You get one e-mail per threshold (70 %, 90 %, 100 %) each calendar month (UTC).", facts);
    }

    /// <summary>The balance fell under the amount the user chose; sent once per crossing.</summary>
    public static EmailContent LowBalance(long balanceMicros, long thresholdMicros, string buyUrl, string settingsUrl) => Build("low-balance",
        "Your AiGate balance is low",
        "Your balance is low",
        [$"Your AiGate balance is ${Credits.Money.UsdDisplay(balanceMicros)}, under the ${Credits.Money.UsdDisplay(thresholdMicros)} you asked us to warn you about.",
         "API requests are refused (HTTP 402) once the balance cannot cover their worst-case cost. Add credits to keep them running.",
         $"To change the amount or turn this e-mail off, open your alert settings: {settingsUrl}"],
        ("Buy credits", buyUrl),
        "We send this once each time the balance falls under your amount, and again only after it has been back above.",
        [("Balance", $"${Credits.Money.UsdDisplay(balanceMicros)}"), ("Warn me under", $"${Credits.Money.UsdDisplay(thresholdMicros)}")]);

    /// <summary>Dunning (billing): a plan payment failed; <paramref name="reminder"/> is 1 for the first e-mail, 2 for the next.</summary>
    public static EmailContent PaymentFailed(string planName, int reminder, int daysLeft, string billingUrl) => Build($"payment-failed-{reminder}",
        reminder == 1 ? $"Your AiGate {planName} payment failed" : $"Reminder: your AiGate {planName} payment is still due",
        reminder == 1 ? "Your plan payment failed" : "Your plan payment is still due",
        [$"We could not charge the card on file for your {planName} plan.",
         $"Update your payment method within {daysLeft} days to keep the plan; we will try the card again. Your credit balance is not affected."],
        ("Update payment method", billingUrl),
        "If you have already updated it, you can ignore this e-mail.");

    /// <summary>Dunning (billing): the last step; the account is now on the free plan.</summary>
    public static EmailContent PlanEndedUnpaid(string planName, string freePlanName, string billingUrl) => Build("plan-ended-unpaid",
        $"Your AiGate {planName} plan has ended",
        "Your plan has ended",
        [$"The payment for your {planName} plan is still outstanding after several attempts, so your account is now on the {freePlanName} plan and its rate limits.",
         "Your credit balance is kept. You can subscribe again at any time."],
        ("Go to billing", billingUrl),
        "If you think this is a mistake, reply to this e-mail.");

    /// <summary>An invitation to join an organization (issue 17); the link carries the only copy of its token.</summary>
    public static EmailContent OrganizationInvite(string organization, string invitedBy, string role, string acceptUrl, DateTimeOffset expiresAt) => Build("organization-invite",
        $"{invitedBy} invited you to {organization} on AiGate",
        $"Join {organization} on AiGate",
        [$"{invitedBy} invited you to join the organization {organization} on AiGate as {role}.",
         "Open the link to accept. If you have no AiGate account yet, sign up with this e-mail address first; the link brings you back."],
        ("Accept the invitation", acceptUrl),
        $"The link works once, until {expiresAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture)}. If you did not expect it, ignore this e-mail: nothing happens unless you accept.");

    internal static EmailContent Build(string kind, string subject, string heading, string[] paragraphs, (string Label, string Url)? action, string footnote,
        IReadOnlyList<(string Label, string Value)>? facts = null)
    {
        var e = HtmlEncoder.Default;
        var html = new System.Text.StringBuilder();
        html.Append($"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{e.Encode(subject)}</title></head>
            <body style="margin:0;padding:0;background:#f4f5f8;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#1b1f2a">
            <table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f8;padding:32px 12px"><tr><td align="center">
            <table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:12px;overflow:hidden;border:1px solid #e3e6ee">
            <tr><td style="background:#12162b;padding:20px 32px;color:#ffffff;font-size:20px;font-weight:700;letter-spacing:.3px">AiGate</td></tr>
            <tr><td style="padding:32px">
            <h1 style="margin:0 0 16px;font-size:22px;line-height:1.3">{e.Encode(heading)}</h1>
            """);
        foreach (var p in paragraphs)
            html.Append($"""<p style="margin:0 0 16px;font-size:15px;line-height:1.6">{e.Encode(p)}</p>""").Append('\n');
        if (facts is { Count: > 0 })
        {
            html.Append("""<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="margin:8px 0 16px;border-collapse:collapse;font-size:15px">""");
            foreach (var (label, value) in facts)
                html.Append($"""<tr><td style="padding:8px 12px 8px 0;color:#5b6275;border-bottom:1px solid #eef0f5;white-space:nowrap">{e.Encode(label)}</td><td style="padding:8px 0;border-bottom:1px solid #eef0f5;font-weight:600">{e.Encode(value)}</td></tr>""");
            html.Append("</table>\n");
        }
        if (action is { } a)
        {
            html.Append($"""
                <p style="margin:24px 0"><a href="{e.Encode(a.Url)}" style="display:inline-block;background:#4f46e5;color:#ffffff;text-decoration:none;font-weight:600;padding:12px 22px;border-radius:8px">{e.Encode(a.Label)}</a></p>
                <p style="margin:0 0 16px;font-size:13px;line-height:1.5;color:#5b6275">If the button does not work, copy this address into your browser:<br><a href="{e.Encode(a.Url)}" style="color:#4f46e5;word-break:break-all">{e.Encode(a.Url)}</a></p>
                """);
        }
        html.Append($"""
            <p style="margin:24px 0 0;font-size:13px;line-height:1.5;color:#5b6275">{e.Encode(footnote)}</p>
            </td></tr>
            <tr><td style="padding:16px 32px;background:#f9fafc;color:#8a90a2;font-size:12px">AiGate · one API for every model. This is an automated message about your account.</td></tr>
            </table></td></tr></table></body></html>
            """);

        var text = new System.Text.StringBuilder();
        text.Append("AiGate\n\n").Append(heading).Append("\n\n");
        foreach (var p in paragraphs) text.Append(p).Append("\n\n");
        if (facts is { Count: > 0 })
        {
            foreach (var (label, value) in facts) text.Append(label.Length > 0 ? $"{label}: " : "  ").Append(value).Append('\n');
            text.Append('\n');
        }
        if (action is { } t) text.Append(t.Label).Append(":\n").Append(t.Url).Append("\n\n");
        text.Append(footnote).Append("\n\n--\nAiGate · one API for every model. This is an automated message about your account.\n");
        return new EmailContent(kind, subject, html.ToString(), text.ToString());
    }
}
