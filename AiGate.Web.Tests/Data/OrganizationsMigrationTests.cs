using AiGate.Web.Data.Migrations;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace AiGate.Web.Tests.Data;

/// <summary>
/// Migration 0025 (organizations, issue 17) on a copy of a database with money in it: a database at migration 24 is seeded
/// with plain SQL (balances, holds, ledgers, leases, usage and its rollups, payments, plans, keys, alerts, budget stops,
/// provider keys, for several users), copied with <c>CREATE DATABASE … TEMPLATE</c>, and the copy is migrated to the end.
/// Every amount and row count per user and in total must be what the untouched original holds, each user must own exactly
/// one personal organization with their own id, and the account tables must now hang off organizations.
/// </summary>
public sealed class OrganizationsMigrationTests
{
    private const int LastBeforeOrganizations = 24;

    private static readonly Guid Alice = Guid.Parse("0190a000-0000-7000-8000-00000000000a");
    private static readonly Guid Bob = Guid.Parse("0190a000-0000-7000-8000-00000000000b");
    private static readonly Guid Carol = Guid.Parse("0190a000-0000-7000-8000-00000000000c");
    /// <summary>An address as long as Identity allows (256): longer than an organization's name may be.</summary>
    private static readonly Guid Dave = Guid.Parse("0190a000-0000-7000-8000-00000000000d");
    /// <summary>No e-mail at all (only a user name), as an operator-made account may be.</summary>
    private static readonly Guid Erin = Guid.Parse("0190a000-0000-7000-8000-00000000000e");
    private static readonly Guid[] Everyone = [Alice, Bob, Carol, Dave, Erin];
    private static readonly string DaveEmail = new string('d', 240) + "@example.test";

    /// <summary>What is summed per user (and in total) before and after: table, its account column, and the amounts.</summary>
    private static readonly (string Table, string Account, string[] Sums)[] Measured =
    [
        ("credit_accounts", "user_id", ["balance_micros", "held_micros"]),
        ("ledger_entries", "user_id", ["amount_micros"]),
        ("credit_leases", "user_id", ["held_micros"]),
        ("usage_events", "user_id", ["cost_micros", "coalesce(provider_cost_micros, 0)", "prompt_tokens + completion_tokens + cached_tokens"]),
        ("usage_rollups_hourly", "user_id", ["cost_micros", "requests", "errors", "prompt_tokens + completion_tokens"]),
        ("usage_rollups_daily", "user_id", ["cost_micros", "requests", "errors", "prompt_tokens + completion_tokens"]),
        ("billing_accounts", "user_id", ["dunning_step"]),
        ("stripe_payments", "user_id", ["amount_cents", "credited_micros", "clawed_back_micros"]),
        ("api_keys", "owner_id", ["spent_micros", "coalesce(credit_limit_micros, 0)"]),
        ("alert_settings", "user_id", ["coalesce(monthly_budget_micros, 0)", "low_balance_micros"]),
        ("usage_alerts", "user_id", ["budget_micros", "spend_micros", "threshold"]),
        ("low_balance_alerts", "user_id", ["threshold_micros", "balance_micros"]),
        ("budget_stops", "user_id", ["budget_micros", "spend_micros"]),
        ("user_provider_keys", "user_id", ["key_version"]),
    ];

    [Fact]
    public async Task A_copy_of_a_database_with_data_at_24_migrates_without_moving_a_micro_and_every_user_gets_a_personal_organization()
    {
        await using var original = await TestDatabase.CreateEmptyAsync();
        await MigrateToAsync(original, LastBeforeOrganizations);
        await original.ExecuteAsync(SeedSql);
        var before = await MeasureAsync(original.ConnectionString);
        Assert.True(before.Count > 100, $"only {before.Count} measurements: the seed did not take");
        Assert.Equal(17_500_000L, before["credit_accounts.balance_micros|" + Alice]);   // spot check of the measure itself

        var copyName = $"test_{Guid.NewGuid():N}";
        NpgsqlConnection.ClearAllPools();
        await AdminAsync($"create database \"{copyName}\" template \"{original.Name}\"");
        var copy = new NpgsqlConnectionStringBuilder(original.ConnectionString) { Database = copyName }.ConnectionString;
        try
        {
            await using (var source = NpgsqlDataSource.Create(copy))
            {
                var applied = await new SchemaMigrator(source, NullLogger<SchemaMigrator>.Instance).ApplyAsync(CancellationToken.None);
                Assert.Equal(MigrationCatalog.All.Where(m => m.Version > LastBeforeOrganizations).Select(m => m.Version), applied.Select(m => m.Version));
            }

            // Not a micro-USD, token or row moved, per user or in total.
            var after = await MeasureAsync(copy);
            var changed = before.Where(b => !after.TryGetValue(b.Key, out var a) || a != b.Value).Select(b => $"{b.Key}: {b.Value} -> {after.GetValueOrDefault(b.Key)}")
                .Concat(after.Keys.Except(before.Keys).Select(k => $"{k}: new"));
            Assert.Empty(changed);

            // One personal organization per user, with the user's id, the user as its only member and owner, named after them.
            Assert.Equal(Everyone.Length, await ScalarAsync<long>(copy, "select count(*) from organizations"));
            Assert.Equal(Everyone.Length, await ScalarAsync<long>(copy, "select count(*) from organization_members"));
            Assert.Equal(Everyone.Length, await ScalarAsync<long>(copy, """
                select count(*) from users u
                join organizations o on o.id = u.id and o.personal
                join organization_members m on m.org_id = u.id and m.user_id = u.id and m.role = 'owner'
                """));
            Assert.Equal("alice@example.test", await ScalarAsync<string>(copy, $"select name from organizations where id = '{Alice}'"));
            Assert.Equal("erin-operator", await ScalarAsync<string>(copy, $"select name from organizations where id = '{Erin}'"));
            Assert.Equal(DaveEmail[..100], await ScalarAsync<string>(copy, $"select name from organizations where id = '{Dave}'"));
            Assert.Equal(0L, await ScalarAsync<long>(copy, "select count(*) from users where current_org_id is not null"));

            // Every existing key was created by its owner.
            Assert.True(await ScalarAsync<long>(copy, "select count(*) from api_keys") >= 6);
            Assert.Equal(0L, await ScalarAsync<long>(copy, "select count(*) from api_keys where created_by is distinct from owner_id"));

            // The account tables' foreign keys point at organizations, none at users any more.
            foreach (var table in (string[])["api_keys", "credit_accounts", "billing_accounts", "alert_settings", "usage_alerts", "low_balance_alerts", "budget_stops", "user_provider_keys"])
            {
                Assert.Equal("organizations", await ScalarAsync<string>(copy,
                    $"select string_agg(distinct confrelid::regclass::text, ',') from pg_constraint where contype = 'f' and conrelid = '{table}'::regclass"));
            }

            // Deleting an organization takes its account rows with it; its ledger and usage stay for the books.
            await ExecuteAsync(copy, $"delete from organizations where id = '{Bob}'");
            foreach (var table in (string[])["credit_accounts", "billing_accounts", "api_keys", "alert_settings", "usage_alerts", "low_balance_alerts", "budget_stops", "user_provider_keys", "organization_members"])
            {
                var column = table switch { "api_keys" => "owner_id", "organization_members" => "org_id", _ => "user_id" };
                Assert.Equal(0L, await ScalarAsync<long>(copy, $"select count(*) from {table} where {column} = '{Bob}'"));
            }
            Assert.Equal(before["ledger_entries.rows|" + Bob], await ScalarAsync<long>(copy, $"select count(*) from ledger_entries where user_id = '{Bob}'"));
            Assert.Equal(1L, await ScalarAsync<long>(copy, $"select count(*) from users where id = '{Bob}'"));
            Assert.Equal(before["credit_accounts.balance_micros|" + Alice], await ScalarAsync<long>(copy, $"select balance_micros from credit_accounts where user_id = '{Alice}'"));

            // A user created after the migration gets a personal organization from the trigger, whatever inserts the row.
            var newcomer = Guid.NewGuid();
            var longEmail = new string('n', 200) + "@example.test";
            await ExecuteAsync(copy, $"""
                insert into users (id, created_at, user_name, normalized_user_name, email, normalized_email, email_confirmed, phone_number_confirmed,
                                   two_factor_enabled, lockout_enabled, access_failed_count)
                values ('{newcomer}', now(), '{longEmail}', upper('{longEmail}'), '{longEmail}', upper('{longEmail}'), true, false, false, true, 0)
                """);
            Assert.Equal(1L, await ScalarAsync<long>(copy, $"""
                select count(*) from organizations o join organization_members m on m.org_id = o.id and m.user_id = o.id and m.role = 'owner'
                where o.id = '{newcomer}' and o.personal and o.name = '{longEmail[..100]}'
                """));
            // ... whose id a credit account can now use (its foreign key is the organization's).
            await ExecuteAsync(copy, $"insert into credit_accounts (user_id, balance_micros, held_micros, updated_at) values ('{newcomer}', 0, 0, now())");
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await AdminAsync($"drop database if exists \"{copyName}\" with (force)");
        }
    }

    /// <summary>Applies migrations 1..<paramref name="version"/> exactly as the migrator does (each with its row and checksum).</summary>
    private static async Task MigrateToAsync(TestDatabase database, int version)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using (var create = new NpgsqlCommand(
            "create table schema_migrations (version integer primary key, name text not null, checksum text, applied_at timestamptz not null default now())", connection))
            await create.ExecuteNonQueryAsync();
        foreach (var migration in MigrationCatalog.All.Where(m => m.Version <= version))
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await migration.ApplyAsync(connection, transaction, CancellationToken.None);
            await using var record = new NpgsqlCommand("insert into schema_migrations (version, name, checksum) values ($1, $2, $3)", connection, transaction);
            record.Parameters.Add(new() { Value = migration.Version });
            record.Parameters.Add(new() { Value = migration.Name });
            record.Parameters.Add(new() { Value = (object?)migration.Checksum ?? DBNull.Value });
            await record.ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        }
        Assert.False(await database.ScalarAsync<bool>("select to_regclass('organizations') is not null"));
    }

    /// <summary>Row count and every measured sum, per account and in total ("*"), keyed "table.measure|account".</summary>
    private static async Task<Dictionary<string, long>> MeasureAsync(string connectionString)
    {
        var parts = new List<string>();
        foreach (var (table, account, sums) in Measured)
        {
            parts.Add($"select '{table}.rows', {account}::text, count(*)::bigint from {table} group by rollup({account})");
            foreach (var sum in sums)
                parts.Add($"select '{table}.{sum.Replace("'", "''", StringComparison.Ordinal)}', {account}::text, coalesce(sum({sum}), 0)::bigint from {table} group by rollup({account})");
        }
        var result = new Dictionary<string, long>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(string.Join("\nunion all\n", parts), connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            result[$"{reader.GetString(0)}|{(reader.IsDBNull(1) ? "*" : reader.GetString(1))}"] = reader.GetInt64(2);
        return result;
    }

    /// <summary>
    /// Realistic accounts at migration 24: Alice and Bob paid and used the gateway (Bob is past due and disputed a charge),
    /// Carol only has a granted balance and a held lease, Dave's e-mail is 253 characters long, Erin has no e-mail.
    /// Amounts are consistent the way the app keeps them: a balance is the sum of its ledger.
    /// </summary>
    private static readonly string SeedSql = $"""
        insert into users (id, created_at, user_name, normalized_user_name, email, normalized_email, email_confirmed, security_stamp,
                           phone_number_confirmed, two_factor_enabled, lockout_enabled, access_failed_count)
        values ('{Alice}', '2026-01-05 10:00+00', 'alice@example.test', 'ALICE@EXAMPLE.TEST', 'alice@example.test', 'ALICE@EXAMPLE.TEST', true, 's1', false, false, true, 0),
               ('{Bob}', '2026-02-11 09:30+00', 'bob@example.test', 'BOB@EXAMPLE.TEST', 'bob@example.test', 'BOB@EXAMPLE.TEST', true, 's2', false, true, true, 0),
               ('{Carol}', '2026-03-01 00:00+00', 'carol@example.test', 'CAROL@EXAMPLE.TEST', 'carol@example.test', 'CAROL@EXAMPLE.TEST', false, 's3', false, false, true, 2),
               ('{Dave}', '2026-03-02 00:00+00', '{DaveEmail}', upper('{DaveEmail}'), '{DaveEmail}', upper('{DaveEmail}'), true, 's4', false, false, true, 0),
               ('{Erin}', '2026-03-03 00:00+00', 'erin-operator', 'ERIN-OPERATOR', null, null, false, 's5', false, false, true, 0);

        -- Ledgers: grants, purchases, usage debits, a refund and a clawback.
        insert into ledger_entries (user_id, kind, amount_micros, reference, idempotency_key, created_at) values
          ('{Alice}', 'grant', 5000000, 'welcome', 'grant:{Alice}', '2026-01-05 10:00+00'),
          ('{Alice}', 'purchase', 20000000, 'cs_alice_1', 'stripe:cs_alice_1', '2026-01-06 12:00+00'),
          ('{Bob}', 'grant', 5000000, 'welcome', 'grant:{Bob}', '2026-02-11 09:30+00'),
          ('{Bob}', 'purchase', 50000000, 'cs_bob_1', 'stripe:cs_bob_1', '2026-02-12 08:00+00'),
          ('{Bob}', 'clawback', -50000000, 'dp_bob_1', 'dispute:dp_bob_1', '2026-03-01 08:00+00'),
          ('{Carol}', 'grant', 1000000, 'welcome', 'grant:{Carol}', '2026-03-01 00:00+00'),
          ('{Dave}', 'grant', 250000, 'welcome', null, '2026-03-02 00:00+00');
        insert into ledger_entries (user_id, kind, amount_micros, reference, idempotency_key, created_at)
        select u.id, 'usage', -(g * 1000 + 7), 'req-' || u.id::text || '-' || g, 'usage:' || u.id::text || '-' || g,
               timestamptz '2026-03-10 00:00+00' + g * interval '7 minutes'
        from (values ('{Alice}'::uuid, 300), ('{Bob}'::uuid, 120)) as u(id, n), generate_series(1, u.n) g;

        insert into credit_accounts (user_id, balance_micros, held_micros, updated_at)
        select user_id, sum(amount_micros), 0, now() from ledger_entries group by user_id;
        -- Alice is made to hold exactly 17.5 USD after her usage so the spot check has a known number.
        insert into ledger_entries (user_id, kind, amount_micros, reference, idempotency_key, created_at)
        select '{Alice}', 'adjustment', 17500000 - balance_micros, 'support', 'adjust:alice', now() from credit_accounts where user_id = '{Alice}';
        update credit_accounts c set balance_micros = (select sum(amount_micros) from ledger_entries l where l.user_id = c.user_id);
        update credit_accounts set held_micros = 350000 where user_id = '{Alice}';
        update credit_accounts set held_micros = 120000 where user_id = '{Carol}';

        insert into credit_leases (id, user_id, instance_id, held_micros, expires_at, created_at) values
          (gen_random_uuid(), '{Alice}', 'web-1', 200000, now() + interval '1 minute', now()),
          (gen_random_uuid(), '{Alice}', 'web-2', 150000, now() + interval '1 minute', now()),
          (gen_random_uuid(), '{Carol}', 'web-1', 120000, now() - interval '1 minute', now() - interval '2 minutes');

        -- Keys (two rotated, one revoked, one with a limit) and their spend.
        insert into api_keys (id, owner_id, name, key_hash, prefix, last4, created_at, last_used_at, expires_at, revoked_at, credit_limit_micros,
                              requests_per_minute, tokens_per_minute, allowed_models, replaced_by_id, spent_micros) values
          ('0190a000-0000-7000-8000-0000000a0001', '{Alice}', 'laptop', decode(repeat('a1', 32), 'hex'), 'ag_live_Aa01', 'aa01', '2026-01-05 11:00+00', now(), null, null, null, null, null, array[]::text[], null, 301000),
          ('0190a000-0000-7000-8000-0000000a0002', '{Alice}', 'ci', decode(repeat('a2', 32), 'hex'), 'ag_live_Aa02', 'aa02', '2026-01-07 11:00+00', now(), '2026-02-01 00:00+00', null, 10000000, 60, 10000, array['gpt-4o-mini'], '0190a000-0000-7000-8000-0000000a0003', 4000000),
          ('0190a000-0000-7000-8000-0000000a0003', '{Alice}', 'ci', decode(repeat('a3', 32), 'hex'), 'ag_live_Aa03', 'aa03', '2026-02-01 00:00+00', now(), null, null, 10000000, 60, 10000, array['gpt-4o-mini'], null, 40049),
          ('0190a000-0000-7000-8000-0000000b0001', '{Bob}', 'server', decode(repeat('b1', 32), 'hex'), 'ag_live_Bb01', 'bb01', '2026-02-11 10:00+00', now(), null, '2026-03-01 08:00+00', null, null, null, array[]::text[], null, 7260840),
          ('0190a000-0000-7000-8000-0000000b0002', '{Bob}', 'backup', decode(repeat('b2', 32), 'hex'), 'ag_live_Bb02', 'bb02', '2026-02-12 10:00+00', null, null, null, 5000000, null, null, array[]::text[], null, 0),
          ('0190a000-0000-7000-8000-0000000d0001', '{Dave}', 'only', decode(repeat('d1', 32), 'hex'), 'ag_live_Dd01', 'dd01', '2026-03-02 01:00+00', null, null, null, null, null, null, array[]::text[], null, 0);

        -- Usage: the calls behind the usage debits, some failed, some streamed, some through the user's own provider key.
        insert into usage_events (request_id, user_id, key_id, model_id, provider, prompt_tokens, completion_tokens, cached_tokens, cost_micros,
                                  estimated, streamed, status, latency_ms, time_to_first_byte_ms, created_at, provider_cost_micros, byok, error_code, error_message)
        select 'req-' || u.id::text || '-' || g, u.id, u.key, case when g % 3 = 0 then 'anthropic/claude-3-5-haiku' else 'openai/gpt-4o-mini' end,
               case when g % 3 = 0 then 'anthropic' else 'openai' end, 100 + g, 20 + g % 50, g % 10, g * 1000 + 7, g % 17 = 0, g % 2 = 0,
               case when g % 29 = 0 then 502 else 200 end, 300 + g, case when g % 2 = 0 then 120 else null end,
               timestamptz '2026-03-10 00:00+00' + g * interval '7 minutes', case when g % 5 = 0 then null else g * 800 end, g % 11 = 0,
               case when g % 29 = 0 then 'upstream_error' else null end, case when g % 29 = 0 then 'Bad gateway' else null end
        from (values ('{Alice}'::uuid, 300, '0190a000-0000-7000-8000-0000000a0001'::uuid), ('{Bob}'::uuid, 120, '0190a000-0000-7000-8000-0000000b0001'::uuid)) as u(id, n, key),
             generate_series(1, u.n) g;

        insert into usage_rollups_hourly (hour, user_id, key_id, model_id, provider, requests, prompt_tokens, completion_tokens, cached_tokens, cost_micros,
                                          errors, latency_p50_ms, latency_p95_ms, provider_cost_micros, byok_requests, latency_histogram)
        select date_trunc('hour', created_at), user_id, key_id, model_id, provider, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens),
               sum(cost_micros), count(*) filter (where status >= 400), min(latency_ms), max(latency_ms), sum(provider_cost_micros),
               count(*) filter (where byok), usage_histogram_sum(usage_latency_histogram(latency_ms))
        from usage_events group by 1, 2, 3, 4, 5;
        insert into usage_rollups_daily (day, user_id, key_id, model_id, provider, requests, prompt_tokens, completion_tokens, cached_tokens, cost_micros,
                                         errors, provider_cost_micros, byok_requests, latency_histogram)
        select (created_at at time zone 'UTC')::date, user_id, key_id, model_id, provider, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens),
               sum(cost_micros), count(*) filter (where status >= 400), sum(provider_cost_micros), count(*) filter (where byok), null
        from usage_events group by 1, 2, 3, 4, 5;

        -- Billing: Alice on a plan, Bob past due and disputed.
        insert into billing_accounts (user_id, stripe_customer_id, plan_id, subscription_id, subscription_status, current_period_end, cancel_at_period_end,
                                      past_due_since, dunning_step, dunning_next_at, disputed_at, state_as_of, updated_at) values
          ('{Alice}', 'cus_alice', 'pro', 'sub_alice', 'active', '2026-04-06 12:00+00', false, null, 0, null, null, 1767700000, now()),
          ('{Bob}', 'cus_bob', 'starter', 'sub_bob', 'past_due', '2026-03-12 08:00+00', true, '2026-03-12 08:00+00', 2, '2026-03-19 08:00+00', '2026-03-01 08:00+00', 1767800000, now());
        insert into stripe_payments (id, user_id, kind, payment_intent_id, amount_cents, currency, credited_micros, clawed_back_micros, receipt_url, created_at) values
          ('cs_alice_1', '{Alice}', 'credits', 'pi_alice_1', 2000, 'usd', 20000000, 0, 'https://pay.stripe.com/receipts/a1', '2026-01-06 12:00+00'),
          ('in_alice_1', '{Alice}', 'invoice', 'pi_alice_2', 2900, 'usd', 0, 0, null, '2026-03-06 12:00+00'),
          ('cs_bob_1', '{Bob}', 'credits', 'pi_bob_1', 5000, 'usd', 50000000, 50000000, null, '2026-02-12 08:00+00');

        -- Alerts and budgets.
        insert into alert_settings (user_id, monthly_budget_micros, notify70, notify90, notify100, hard_stop, low_balance_enabled, low_balance_micros, updated_at) values
          ('{Alice}', 400000000, true, true, true, false, true, 5000000, now()),
          ('{Bob}', 7000000, false, true, true, true, false, 1000000, now()),
          ('{Carol}', null, true, true, true, false, true, 2000000, now());
        insert into usage_alerts (user_id, period, threshold, budget_micros, spend_micros, created_at) values
          ('{Bob}', '2026-03-01', 70, 7000000, 5100000, now()), ('{Bob}', '2026-03-01', 90, 7000000, 6400000, now()),
          ('{Bob}', '2026-03-01', 100, 7000000, 7260840, now()), ('{Alice}', '2026-02-01', 70, 5000000, 3600000, now());
        insert into low_balance_alerts (user_id, threshold_micros, balance_micros, created_at) values
          ('{Carol}', 2000000, 1000000, now()), ('{Bob}', 1000000, 0, now());
        insert into budget_stops (user_id, period, budget_micros, spend_micros, created_at) values ('{Bob}', '2026-03-01', 7000000, 7260840, now());

        -- Provider keys (sealed secrets are opaque bytes here).
        insert into user_provider_keys (id, user_id, kind, label, base_url, secret, key_version, last4, fallback_to_platform, created_at, last_error_at, last_error) values
          (gen_random_uuid(), '{Alice}', 'openai', 'work', null, decode('00112233', 'hex'), 1, 'wxyz', true, now(), null, null),
          (gen_random_uuid(), '{Alice}', 'custom', 'local', 'https://llm.example.test/v1', decode('44556677', 'hex'), 2, 'abcd', false, now(), now(), 'Unauthorized'),
          (gen_random_uuid(), '{Bob}', 'anthropic', '', null, decode('8899', 'hex'), 1, 'qrst', true, now(), null, null);
        """;

    private static async Task<T?> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static Task AdminAsync(string sql) =>
        ExecuteAsync(new NpgsqlConnectionStringBuilder(TestDatabase.ServerConnectionString) { Database = "postgres", Pooling = false }.ConnectionString, sql);
}
