using System.Globalization;
using System.Text.Json;
using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Keys;
using AiGate.Web.Features.Organizations;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Features.Usage;

/// <summary>
/// Our own /api/v1 endpoints for programs that watch their spend: <c>GET /api/v1/balance</c> (the
/// account's balance and the calling key's spend) and <c>GET /api/v1/usage</c> (the account's usage
/// over whole UTC days, grouped by day, model or key). Bearer key auth, OpenAI's error envelope;
/// USD amounts are exact decimal strings of the integer micro-USD we store. A restricted key (allowed
/// models or a credit limit: made to be handed to someone or something less trusted) sees only its own
/// usage, never the account's other keys, their names or their models; a key made by a plain member of a team sees the usage of
/// that member's keys only, while its balance stays the organization's, which its calls spend (docs/api.md).
/// </summary>
public sealed class UsageEndpoints(ApiKeyAuthenticator authenticator, NpgsqlDataSource dataSource, UsageQueries queries, RequestLog log,
    IOptions<CreditsOptions> options, TimeProvider clock)
{
    private const int DefaultDays = 30;
    private readonly decimal _usdPerCredit = options.Value.UsdPerCredit;

    public async Task BalanceAsync(HttpContext context)
    {
        if (await authenticator.AuthenticateAsync(context) is not { } key)
        {
            await ApiErrors.InvalidApiKeyAsync(context);
            return;
        }
        // One round trip for both: the key row (for its current name and spend; the cache holds neither
        // fresh) and the owner's account (absent until the first credit: all zero).
        await using var command = dataSource.CreateCommand("""
            select k.name, k.prefix, k.spent_micros, k.credit_limit_micros, coalesce(a.balance_micros, 0), coalesce(a.held_micros, 0)
            from api_keys k left join credit_accounts a on a.user_id = k.owner_id
            where k.id = $1 and k.owner_id = $2 and k.revoked_at is null
            """);
        command.Parameters.Add(new() { Value = key.KeyId });
        command.Parameters.Add(new() { Value = key.OwnerId });
        string name, prefix;
        long spent, balance, held;
        long? limit;
        await using (var reader = await command.ExecuteReaderAsync(context.RequestAborted))
        {
            if (!await reader.ReadAsync(context.RequestAborted))
            {
                await ApiErrors.InvalidApiKeyAsync(context);   // revoked since the cache looked
                return;
            }
            (name, prefix, spent) = (reader.GetString(0), reader.GetString(1), reader.GetInt64(2));
            limit = reader.IsDBNull(3) ? null : reader.GetInt64(3);
            (balance, held) = (reader.GetInt64(4), reader.GetInt64(5));
        }

        context.Response.ContentType = "application/json";
        await using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("object", "balance");
            writer.WriteString("balance_usd", Money.Usd(balance));
            writer.WriteString("available_usd", Money.Usd(balance - held));
            writer.WriteString("held_usd", Money.Usd(held));
            writer.WriteNumber("credits", Money.Credits(balance, _usdPerCredit));
            writer.WriteString("currency", "USD");
            writer.WriteStartObject("key");
            writer.WriteString("name", name);
            writer.WriteString("prefix", prefix);
            writer.WriteString("spent_usd", Money.Usd(spent));
            if (limit is { } l) writer.WriteString("credit_limit_usd", Money.Usd(l)); else writer.WriteNull("credit_limit_usd");
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    public async Task UsageAsync(HttpContext context)
    {
        if (await authenticator.AuthenticateAsync(context) is not { } key)
        {
            await ApiErrors.InvalidApiKeyAsync(context);
            return;
        }
        var (parsed, error) = ParseRange(context.Request.Query, DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime));
        if (parsed is not { } range)
        {
            await ApiErrors.InvalidRequestAsync(context, error!.Value.Message, error.Value.Param);
            return;
        }

        // An unrestricted key sees its organization's usage, all its keys, when its creator may (ViewOrgUsage), else the
        // usage of the keys its creator made; a restricted one only its own.
        var restricted = IsRestricted(key);
        var member = restricted ? null : await UsageMemberAsync(key, context.RequestAborted);
        var scope = restricted ? "key" : member is null ? "account" : "member";
        if (range.Csv)
        {
            // One row per call of the period, streamed from the raw events (a year of calls is never held in memory).
            var filter = new RequestLogFilter(UsageQueries.StartOfDay(range.Start), UsageQueries.StartOfDay(range.End.AddDays(1)),
                KeyId: restricted ? key.KeyId : null, MemberId: member);
            await UsageCsv.WriteRequestsAsync(context.Response, string.Create(CultureInfo.InvariantCulture, $"usage-{range.Start:yyyy-MM-dd}-{range.End:yyyy-MM-dd}.csv"),
                log.StreamAsync(key.OwnerId, filter, context.RequestAborted), context.RequestAborted);
            return;
        }
        var summary = await queries.SummarizeDaysAsync(key.OwnerId, range.Start, range.End, range.Grouping, context.RequestAborted,
            restricted ? key.KeyId : null, member);
        var groups = range.Grouping == UsageGrouping.Day ? UsageQueries.FillDays(summary.Groups, range.Start, range.End) : summary.Groups;

        context.Response.ContentType = "application/json";
        await using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("object", "list");
            writer.WriteString("start", range.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            writer.WriteString("end", range.End.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            writer.WriteString("group_by", GroupingName(range.Grouping));
            writer.WriteString("scope", scope);
            writer.WriteStartArray("data");
            foreach (var group in groups)
            {
                writer.WriteStartObject();
                switch (range.Grouping)
                {
                    case UsageGrouping.Day:
                        writer.WriteString("day", group.Day!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                        break;
                    case UsageGrouping.Model:
                        writer.WriteString("model", group.Model);
                        break;
                    case UsageGrouping.Key:
                        writer.WriteString("key_id", group.KeyId!.Value);
                        if (group.KeyName is null) writer.WriteNull("key_name"); else writer.WriteString("key_name", group.KeyName);
                        if (group.KeyPrefix is null) writer.WriteNull("key_prefix"); else writer.WriteString("key_prefix", group.KeyPrefix);
                        break;
                    case UsageGrouping.Provider:
                        writer.WriteString("provider", group.Provider);
                        break;
                    case UsageGrouping.Member:
                        // Both null for the calls of a key that no longer exists; the e-mail alone for a creator no longer a user.
                        if (group.MemberId is { } memberId) writer.WriteString("member_id", memberId); else writer.WriteNull("member_id");
                        if (group.MemberEmail is null) writer.WriteNull("member_email"); else writer.WriteString("member_email", group.MemberEmail);
                        break;
                }
                WriteTotals(writer, group.Totals);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartObject("total");
            WriteTotals(writer, summary.Total);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    /// <summary>
    /// Null when the key's creator may see the whole organization's usage (<see cref="OrgPermission.ViewOrgUsage"/>), else the
    /// creator, whose keys' usage is all the key sees. One small query per usage call (not the chat path): the role is read
    /// fresh, so a demoted admin's keys see less at once.
    /// </summary>
    private async Task<Guid?> UsageMemberAsync(KeyIdentity key, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("select role from organization_members where org_id = $1 and user_id = $2");
        command.Parameters.Add(new() { Value = key.OwnerId });
        command.Parameters.Add(new() { Value = key.CreatedBy });
        var role = await command.ExecuteScalarAsync(ct) as string;
        return role is not null && OrgRoles.Allows(OrgRoles.Parse(role), OrgPermission.ViewOrgUsage) ? null : key.CreatedBy;
    }

    /// <summary>A key limited to some models or to a credit limit: its usage view is its own.</summary>
    internal static bool IsRestricted(KeyIdentity key) => key.AllowedModels.Count > 0 || key.CreditLimitMicros is not null;

    private static void WriteTotals(Utf8JsonWriter writer, UsageTotals totals)
    {
        writer.WriteNumber("requests", totals.Requests);
        writer.WriteNumber("prompt_tokens", totals.PromptTokens);
        writer.WriteNumber("completion_tokens", totals.CompletionTokens);
        writer.WriteNumber("cached_tokens", totals.CachedTokens);
        writer.WriteString("cost_usd", Money.Usd(totals.CostMicros));
        writer.WriteNumber("errors", totals.Errors);
        writer.WriteNumber("byok_requests", totals.ByokRequests);
    }

    private static string GroupingName(UsageGrouping grouping) => grouping switch
    {
        UsageGrouping.Model => "model",
        UsageGrouping.Key => "key",
        UsageGrouping.Provider => "provider",
        UsageGrouping.Member => "member",
        _ => "day",
    };

    /// <param name="Csv"><c>format=csv</c>: one CSV row per call of the range instead of the JSON summary.</param>
    public readonly record struct UsageRange(DateOnly Start, DateOnly End, UsageGrouping Grouping, bool Csv = false);

    /// <summary>
    /// <c>start</c> and <c>end</c> are UTC days (<c>YYYY-MM-DD</c>), both included; by default the 30
    /// days ending at <c>end</c>, which defaults to today (so <c>start</c> alone means from then to today). At most
    /// <see cref="UsageQueries.MaxDays"/> days. <c>group_by</c> is day (default), model, key, provider or member; <c>format</c> json
    /// (default) or csv.
    /// </summary>
    public static (UsageRange? Range, (string Message, string Param)? Error) ParseRange(IQueryCollection query, DateOnly today)
    {
        if (!TryDay(query, "start", out var start, out var startError)) return (null, startError);
        if (!TryDay(query, "end", out var end, out var endError)) return (null, endError);
        var grouping = UsageGrouping.Day;
        if (query.TryGetValue("group_by", out var groupBy))
        {
            switch (groupBy.Count == 1 ? groupBy[0] : null)
            {
                case "day": grouping = UsageGrouping.Day; break;
                case "model": grouping = UsageGrouping.Model; break;
                case "key": grouping = UsageGrouping.Key; break;
                case "provider": grouping = UsageGrouping.Provider; break;
                case "member": grouping = UsageGrouping.Member; break;
                default: return (null, ("group_by must be one of day, model, key, provider, member.", "group_by"));
            }
        }
        var csv = false;
        if (query.TryGetValue("format", out var format))
        {
            switch (format.Count == 1 ? format[0] : null)
            {
                case "json": break;
                case "csv": csv = true; break;
                default: return (null, ("format must be json or csv.", "format"));
            }
        }
        var last = end ?? today;
        var first = start ?? last.AddDays(-(DefaultDays - 1));
        if (first > last) return (null, ("start must not be after end.", "start"));
        if (last.DayNumber - first.DayNumber + 1 > UsageQueries.MaxDays)
            return (null, ($"The range may cover at most {UsageQueries.MaxDays} days (start and end included).", start is null ? "end" : "start"));
        return (new UsageRange(first, last, grouping, csv), null);
    }

    private static bool TryDay(IQueryCollection query, string name, out DateOnly? day, out (string, string)? error)
    {
        day = null;
        error = null;
        if (!query.TryGetValue(name, out var values)) return true;
        // Years 2000–9000 only: the range arithmetic (a default start days before end, the day after end)
        // must not run off DateOnly's ends, which was a 500 for end=0001-01-01.
        if (values.Count == 1 && DateOnly.TryParseExact(values[0], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed)
            && parsed.Year is >= 2000 and <= 9000)
        {
            day = parsed;
            return true;
        }
        error = ($"{name} must be a date in the form YYYY-MM-DD (a UTC day).", name);
        return false;
    }
}
