using AiGate.Web.Features.Jobs;

namespace AiGate.Web.Data.Migrations;

/// <summary>
/// Every migration, in order. EF's design-time tools do not restore from our package source, so
/// migrations are written by hand (see docs/architecture.md, "Schema migrations"): add the next
/// file here, and the schema-equals-model test tells whether it matches the EF model.
/// Never edit a migration that has shipped; add a new one.
/// </summary>
public static class MigrationCatalog
{
    public static IReadOnlyList<SchemaMigration> All { get; } =
    [
        SchemaMigration.Sql(1, "identity"),
        SchemaMigration.Sql(2, "quartz_tables"),
        SchemaMigration.Sql(3, "job_runs_and_data_protection"),
        SchemaMigration.Sql(4, "accounts_and_email"),
        SchemaMigration.Sql(5, "gateway"),
        SchemaMigration.Sql(6, "credits"),
        SchemaMigration.Sql(7, "instances"),
        SchemaMigration.Sql(8, "billing"),
        SchemaMigration.Sql(9, "usage_rollups_and_alerts"),
        SchemaMigration.Sql(10, "provider_health_and_audit"),
        SchemaMigration.Sql(11, "usage_dead_letters"),
        SchemaMigration.Code(12, "hangfire_schema", HangfireSchema.InstallAsync),
        SchemaMigration.Sql(13, "audit_changes"),
        SchemaMigration.Sql(14, "provider_settings"),
        SchemaMigration.Sql(15, "account_controls"),
        SchemaMigration.Sql(16, "provider_cost_and_append_only_audit"),
        SchemaMigration.Sql(19, "stream_checkpoints"),
        SchemaMigration.Sql(20, "vault_and_provider_keys"),
        SchemaMigration.Sql(21, "byok"),
        SchemaMigration.Sql(22, "model_kinds_and_media_prices"),
        SchemaMigration.Sql(23, "usage_errors"),
        SchemaMigration.Sql(24, "usage_latency_histograms"),
        SchemaMigration.Sql(25, "organizations"),
        SchemaMigration.Sql(26, "member_budgets"),
    ];
}
