using Npgsql;

namespace AiGate.Web.Features.Organizations;

/// <summary>One person a money e-mail of an organization goes to (the outbox row names them, not the organization).</summary>
public readonly record struct MoneyRecipient(Guid UserId, string Email);

/// <summary>
/// Who gets an organization's money e-mails (usage and low-balance alerts, dunning): its owner and its billing members
/// with a confirmed e-mail (issue 17). An organization's id is not a user id (only a personal one's is), so these
/// e-mails are never addressed by joining <c>users</c> on the account id.
/// </summary>
public static class MoneyRecipients
{
    /// <summary>The recipients of every organization in <paramref name="orgIds"/>, in one query; the owner first.</summary>
    public static async Task<Dictionary<Guid, List<MoneyRecipient>>> ForAsync(NpgsqlDataSource dataSource, IReadOnlyCollection<Guid> orgIds,
        CancellationToken ct)
    {
        var found = new Dictionary<Guid, List<MoneyRecipient>>();
        if (orgIds.Count == 0) return found;
        await using var command = dataSource.CreateCommand("""
            select m.org_id, u.id, u.email
            from organization_members m
            join users u on u.id = m.user_id
            where m.org_id = any($1) and m.role in ('owner', 'billing') and u.email_confirmed and u.email is not null
            order by m.org_id, m.role = 'owner' desc, u.email
            """);
        command.Parameters.Add(new() { Value = orgIds.ToArray() });
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var orgId = reader.GetGuid(0);
            if (!found.TryGetValue(orgId, out var list)) found[orgId] = list = [];
            list.Add(new MoneyRecipient(reader.GetGuid(1), reader.GetString(2)));
        }
        return found;
    }

    /// <summary>The recipients of one organization.</summary>
    public static async Task<List<MoneyRecipient>> ForAsync(NpgsqlDataSource dataSource, Guid orgId, CancellationToken ct) =>
        (await ForAsync(dataSource, [orgId], ct)).GetValueOrDefault(orgId) ?? [];
}
