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

    internal static EmailContent Build(string kind, string subject, string heading, string[] paragraphs, (string Label, string Url)? action, string footnote)
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
        if (action is { } t) text.Append(t.Label).Append(":\n").Append(t.Url).Append("\n\n");
        text.Append(footnote).Append("\n\n--\nAiGate · one API for every model. This is an automated message about your account.\n");
        return new EmailContent(kind, subject, html.ToString(), text.ToString());
    }
}
