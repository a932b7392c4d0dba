using System.Text;

namespace AiGate.Web.Features.Admin;

/// <summary>
/// RFC 4180 CSV for admin downloads: fields with a comma, quote, CR or LF are quoted and their quotes doubled; lines end
/// in CRLF. Text that a spreadsheet would run as a formula (starting with = + - @, tab or CR) is prefixed with an
/// apostrophe, since e-mail addresses and model ids come from users and operators (OWASP "CSV injection"); numbers go
/// through <see cref="Number"/>, which keeps their minus sign.
/// </summary>
public sealed class Csv
{
    private readonly StringBuilder _text = new();

    public Csv Row(params CsvField[] fields)
    {
        for (var i = 0; i < fields.Length; i++)
        {
            if (i > 0) _text.Append(',');
            Append(fields[i]);
        }
        _text.Append("\r\n");
        return this;
    }

    public override string ToString() => _text.ToString();

    /// <summary>UTF-8 without a byte-order mark.</summary>
    public byte[] ToUtf8() => new UTF8Encoding(false).GetBytes(_text.ToString());

    private void Append(CsvField field)
    {
        var value = field.Value;
        if (!field.IsNumber && value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r') value = "'" + value;
        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            _text.Append(value);
            return;
        }
        _text.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }
}

/// <summary>One CSV field: text (guarded against formulas) or a number (written as is).</summary>
public readonly record struct CsvField(string Value, bool IsNumber)
{
    public static implicit operator CsvField(string? text) => new(text ?? "", false);

    public static CsvField Number(string formatted) => new(formatted, true);
}
