using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using AiGate.Web.Features.Credits;
using Npgsql;

namespace AiGate.Web.Features.Usage;

/// <summary>
/// Which of an account's calls the request log shows: created in [<see cref="From"/>, <see cref="To"/>), and, when set,
/// of one model, one key, a status (<c>ok</c>, <c>error</c> or a code such as <c>429</c>), streamed or not, one request id, or
/// the keys one member created (<see cref="MemberId"/>: <c>api_keys.created_by</c>).
/// </summary>
public sealed record RequestLogFilter(DateTimeOffset From, DateTimeOffset To, string? Model = null, Guid? KeyId = null, string? Status = null,
    bool? Streamed = null, string? RequestId = null, Guid? MemberId = null);

/// <summary>One call as the request log, its detail page and its CSV show it. Money in micro-USD.</summary>
public sealed record RequestLogRow(long Id, string RequestId, DateTimeOffset At, Guid KeyId, string? KeyName, string? KeyPrefix, string Model,
    string Provider, long PromptTokens, long CachedTokens, long CompletionTokens, long CostMicros, long? ProviderCostMicros, bool Estimated,
    bool Streamed, int Status, int LatencyMs, int? TimeToFirstByteMs, string? ErrorCode = null, string? ErrorMessage = null,
    Guid? MemberId = null, string? MemberEmail = null)
{
    /// <summary>Who made the call: the e-mail of the key's creator, "former member" when they are no longer a user.</summary>
    public string MemberLabel => MemberEmail ?? (MemberId is null ? "deleted key" : "former member");
}

/// <summary>Where a page of the log ends: the next page holds the calls strictly older than (at, id).</summary>
public readonly record struct RequestLogCursor(DateTimeOffset At, long Id)
{
    public override string ToString() => $"{At.UtcTicks.ToString(CultureInfo.InvariantCulture)}-{Id.ToString(CultureInfo.InvariantCulture)}";

    public static RequestLogCursor? Parse(string? text)
    {
        var dash = text?.IndexOf('-') ?? -1;
        if (dash <= 0) return null;
        return long.TryParse(text.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
               && long.TryParse(text.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
               && ticks <= DateTimeOffset.MaxValue.UtcTicks
            ? new RequestLogCursor(new DateTimeOffset(ticks, TimeSpan.Zero), id)
            : null;
    }
}

/// <summary>
/// An account's raw usage rows, newest first: a page at a time by keyset (<c>(created_at, id) &lt; cursor</c>, never
/// OFFSET, so page 1,000 costs what page 1 does and a call written meanwhile neither repeats nor hides a row), one by
/// request id, or all of a period as a stream for CSV (rows are read from the connection as they are written out,
/// so a year of a busy account never sits in memory). Every statement filters by owner, key names included.
/// </summary>
public sealed class RequestLog(NpgsqlDataSource dataSource)
{
    public const int PageSize = 50;

    private const string Columns = """
        e.id, e.request_id, e.created_at, e.key_id, k.name, k.prefix, e.model_id, e.provider, e.prompt_tokens, e.cached_tokens,
        e.completion_tokens, e.cost_micros, e.provider_cost_micros, e.estimated, e.streamed, e.status, e.latency_ms, e.time_to_first_byte_ms,
        e.error_code, e.error_message, k.created_by, u.email
        """;

    /// <summary>The key (owner-filtered: another organization's key never lends its name) and its creator.</summary>
    private const string Joins = "left join api_keys k on k.id = e.key_id and k.owner_id = $1 left join users u on u.id = k.created_by";

    public async Task<(IReadOnlyList<RequestLogRow> Rows, RequestLogCursor? Next)> PageAsync(Guid userId, RequestLogFilter filter,
        RequestLogCursor? after, CancellationToken ct)
    {
        await using var command = Build(userId, filter, after, PageSize + 1);
        var rows = new List<RequestLogRow>(PageSize + 1);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) rows.Add(Read(reader));
        if (rows.Count <= PageSize) return (rows, null);
        rows.RemoveAt(PageSize);
        return (rows, new RequestLogCursor(rows[^1].At, rows[^1].Id));
    }

    /// <summary>Every row of the filter, newest first, read as they are consumed.</summary>
    public async IAsyncEnumerable<RequestLogRow> StreamAsync(Guid userId, RequestLogFilter filter, [EnumeratorCancellation] CancellationToken ct)
    {
        await using var command = Build(userId, filter, after: null, limit: null);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) yield return Read(reader);
    }

    /// <summary>
    /// One of the account's calls; null when it has no call of that id (another account's included), or, with
    /// <paramref name="memberId"/>, when the call was not made with a key that member created.
    /// </summary>
    public async Task<RequestLogRow?> FindAsync(Guid userId, string requestId, CancellationToken ct, Guid? memberId = null)
    {
        await using var command = dataSource.CreateCommand($"""
            select {Columns} from usage_events e {Joins}
            where e.user_id = $1 and e.request_id = $2 {(memberId is null ? "" : "and k.created_by = $3")}
            """);
        command.Parameters.Add(new() { Value = userId });
        command.Parameters.Add(new() { Value = requestId });
        if (memberId is { } member) command.Parameters.Add(new() { Value = member });
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? Read(reader) : null;
    }

    private NpgsqlCommand Build(Guid userId, RequestLogFilter filter, RequestLogCursor? after, int? limit)
    {
        var command = dataSource.CreateCommand();
        var sql = new StringBuilder($"select {Columns} from usage_events e {Joins} ");
        sql.Append("where e.user_id = $1 and e.created_at >= $2 and e.created_at < $3");
        command.Parameters.Add(new() { Value = userId });
        command.Parameters.Add(new() { Value = filter.From.ToUniversalTime() });
        command.Parameters.Add(new() { Value = filter.To.ToUniversalTime() });
        // Only parameters are appended below: the clauses themselves are constants.
        void Where(string clause, object value)
        {
            command.Parameters.Add(new() { Value = value });
            sql.Append(" and ").Append(clause.Replace("@", "$" + command.Parameters.Count.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
        }
        if (!string.IsNullOrEmpty(filter.Model)) Where("e.model_id = @", filter.Model);
        if (filter.KeyId is { } keyId) Where("e.key_id = @", keyId);
        // The joined key is this organization's (k.owner_id = $1), so its creator is a member's of this organization.
        if (filter.MemberId is { } memberId) Where("k.created_by = @", memberId);
        if (filter.Streamed is { } streamed) Where("e.streamed = @", streamed);
        if (!string.IsNullOrEmpty(filter.RequestId)) Where("e.request_id = @", filter.RequestId);
        switch (filter.Status)
        {
            case null or "": break;
            case "ok": sql.Append(" and e.status < 400"); break;
            case "error": sql.Append(" and e.status >= 400"); break;
            default:
                Where("e.status = @", int.TryParse(filter.Status, NumberStyles.None, CultureInfo.InvariantCulture, out var code) ? code : -1);
                break;
        }
        if (after is { } cursor)
        {
            command.Parameters.Add(new() { Value = cursor.At });
            command.Parameters.Add(new() { Value = cursor.Id });
            sql.Append(CultureInfo.InvariantCulture, $" and (e.created_at, e.id) < (${command.Parameters.Count - 1}, ${command.Parameters.Count})");
        }
        sql.Append(" order by e.created_at desc, e.id desc");
        if (limit is { } n) sql.Append(CultureInfo.InvariantCulture, $" limit {n}");
        command.CommandText = sql.ToString();
        return command;
    }

    private static RequestLogRow Read(NpgsqlDataReader r) => new(
        r.GetInt64(0), r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.GetGuid(3), r.IsDBNull(4) ? null : r.GetString(4),
        r.IsDBNull(5) ? null : r.GetString(5), r.GetString(6), r.GetString(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11),
        r.IsDBNull(12) ? null : r.GetInt64(12), r.GetBoolean(13), r.GetBoolean(14), r.GetInt32(15), r.GetInt32(16), r.IsDBNull(17) ? null : r.GetInt32(17),
        r.IsDBNull(18) ? null : r.GetString(18), r.IsDBNull(19) ? null : r.GetString(19), r.IsDBNull(20) ? null : r.GetGuid(20),
        r.IsDBNull(21) ? null : r.GetString(21));
}

/// <summary>
/// CSV (RFC 4180: a header row, CRLF line ends, a field quoted when it holds a comma, quote or line break, quotes
/// doubled) written as rows arrive: rows gather in one reused builder that goes out (asynchronously: Kestrel allows no
/// synchronous writes) every 8 KiB and is flushed every <see cref="FlushEvery"/> rows, so the client sees the first rows
/// while later ones are still being read, and memory stays one buffer whatever the period.
/// </summary>
public static class UsageCsv
{
    private const int FlushEvery = 500;

    public static readonly string[] RequestColumns =
    [
        "time_utc", "request_id", "model", "provider", "key_name", "key_prefix", "streamed", "status", "prompt_tokens", "cached_tokens",
        "completion_tokens", "cost_usd", "cost_micros", "latency_ms", "ttfb_ms", "estimated",
    ];

    public static readonly string[] DayColumns = ["day", "requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_usd", "cost_micros", "errors"];

    private const int ChunkChars = 8 * 1024;

    /// <summary>Sets the CSV headers (an attachment named <paramref name="fileName"/>) and returns a writer over the body.</summary>
    private static StreamWriter Begin(HttpResponse response, string fileName, string[] header, StringBuilder row)
    {
        response.ContentType = "text/csv; charset=utf-8";
        response.Headers.ContentDisposition = $"attachment; filename=\"{fileName}\"";
        response.Headers.CacheControl = "no-store";
        AppendRow(row, header);
        return new StreamWriter(response.Body, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 16 * 1024, leaveOpen: true);
    }

    public static async Task WriteRequestsAsync(HttpResponse response, string fileName, IAsyncEnumerable<RequestLogRow> rows, CancellationToken ct)
    {
        var buffer = new StringBuilder(ChunkChars * 2);
        await using var writer = Begin(response, fileName, RequestColumns, buffer);
        var fields = new string[RequestColumns.Length];
        var n = 0;
        await foreach (var r in rows.WithCancellation(ct))
        {
            fields[0] = r.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
            fields[1] = r.RequestId;
            fields[2] = r.Model;
            fields[3] = r.Provider;
            fields[4] = r.KeyName ?? "";
            fields[5] = r.KeyPrefix ?? "";
            fields[6] = r.Streamed ? "true" : "false";
            fields[7] = r.Status.ToString(CultureInfo.InvariantCulture);
            fields[8] = r.PromptTokens.ToString(CultureInfo.InvariantCulture);
            fields[9] = r.CachedTokens.ToString(CultureInfo.InvariantCulture);
            fields[10] = r.CompletionTokens.ToString(CultureInfo.InvariantCulture);
            fields[11] = Money.Usd(r.CostMicros);
            fields[12] = r.CostMicros.ToString(CultureInfo.InvariantCulture);
            fields[13] = r.LatencyMs.ToString(CultureInfo.InvariantCulture);
            fields[14] = r.TimeToFirstByteMs?.ToString(CultureInfo.InvariantCulture) ?? "";
            fields[15] = r.Estimated ? "true" : "false";
            AppendRow(buffer, fields);
            if (buffer.Length >= ChunkChars)
            {
                await writer.WriteAsync(buffer, ct);
                buffer.Clear();
            }
            if (++n % FlushEvery == 0) await writer.FlushAsync(ct);
        }
        await writer.WriteAsync(buffer, ct);
        await writer.FlushAsync(ct);
    }

    public static async Task WriteDaysAsync(HttpResponse response, string fileName, IReadOnlyList<UsageGroup> days, CancellationToken ct)
    {
        var rows = new StringBuilder(ChunkChars);
        await using var writer = Begin(response, fileName, DayColumns, rows);
        var fields = new string[DayColumns.Length];
        foreach (var d in days)
        {
            var t = d.Totals;
            fields[0] = d.Day!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            fields[1] = t.Requests.ToString(CultureInfo.InvariantCulture);
            fields[2] = t.PromptTokens.ToString(CultureInfo.InvariantCulture);
            fields[3] = t.CachedTokens.ToString(CultureInfo.InvariantCulture);
            fields[4] = t.CompletionTokens.ToString(CultureInfo.InvariantCulture);
            fields[5] = Money.Usd(t.CostMicros);
            fields[6] = t.CostMicros.ToString(CultureInfo.InvariantCulture);
            fields[7] = t.Errors.ToString(CultureInfo.InvariantCulture);
            AppendRow(rows, fields);
        }
        await writer.WriteAsync(rows, ct);
        await writer.FlushAsync(ct);
    }

    public static void AppendRow(StringBuilder row, string[] fields)
    {
        for (var i = 0; i < fields.Length; i++)
        {
            if (i > 0) row.Append(',');
            AppendField(row, fields[i]);
        }
        row.Append("\r\n");
    }

    public static void AppendField(StringBuilder row, string value)
    {
        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            row.Append(value);
            return;
        }
        row.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }
}
