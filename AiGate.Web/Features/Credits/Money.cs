using System.Globalization;

namespace AiGate.Web.Features.Credits;

/// <summary>
/// Integer micro-USD as text, exactly (DESIGN "Money"): 1 USD = 1,000,000 micros, so six decimals
/// always suffice and nothing is rounded. Credits are a display unit of <see cref="CreditsOptions.UsdPerCredit"/> USD.
/// </summary>
public static class Money
{
    /// <summary>The API form: always six decimals ("12.345678", "0.000000", "-1.500000").</summary>
    public static string Usd(long micros) => (micros / 1_000_000m).ToString("0.000000", CultureInfo.InvariantCulture);

    /// <summary>Dollars as micro-USD; digits past the sixth decimal are dropped (callers check the decimals they allow).</summary>
    public static long FromUsd(decimal usd) => (long)(usd * 1_000_000m);

    /// <summary>For people: at least two decimals, more only when they carry a digit ("12.50", "0.000018", "1,234.5678").</summary>
    public static string UsdDisplay(long micros) => (micros / 1_000_000m).ToString("#,##0.00####", CultureInfo.InvariantCulture);

    /// <summary>Credits for an amount, rounded to six decimals (exact for the default 0.01 USD credit, which needs at most four).</summary>
    public static decimal Credits(long micros, decimal usdPerCredit) => Math.Round(micros / 1_000_000m / usdPerCredit, 6, MidpointRounding.ToZero);

    public static string CreditsDisplay(long micros, decimal usdPerCredit) =>
        Credits(micros, usdPerCredit).ToString("#,##0.######", CultureInfo.InvariantCulture);
}
