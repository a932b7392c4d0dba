using AiGate.Web.Data.Migrations;
using AiGate.Web.Infrastructure;
using AiGate.Web.Infrastructure.Cli;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace AiGate.Web.Data;

public static class DataExtensions
{
    /// <summary>PostgreSQL, EF Core and the migrator. Set <c>ConnectionStrings__Default</c>.</summary>
    public static IHostApplicationBuilder AddData(this IHostApplicationBuilder builder)
    {
        var connectionString = GetConnectionString(builder.Configuration);
        // One data source (one connection pool) per process, shared by EF, the migrator and
        // the hot paths that talk to Npgsql directly.
        builder.Services.AddSingleton(_ => NpgsqlDataSource.Create(WithShortCancellation(connectionString)));
        builder.Services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<DatabaseDeadline>();
        builder.Services.AddDbContext<AppDbContext>((sp, o) => o.UseNpgsql(sp.GetRequiredService<NpgsqlDataSource>()));
        builder.Services.AddSingleton<SchemaMigrator>();
        builder.Services.AddCliVerb(MigrateVerb.Verb);
        builder.Services.AddCliVerb(ModelSqlVerb);
        return builder;
    }

    /// <summary>
    /// <c>model-sql</c>: print the DDL that EF expects for the current model. A developer tool for
    /// writing the next migration by hand (EF's design-time tools do not restore here).
    /// </summary>
    private static readonly CliVerb ModelSqlVerb = new("model-sql", "print the schema the EF model expects (for writing migrations)", [],
        static async context =>
        {
            var db = context.Services.GetRequiredService<AppDbContext>();
            await context.Out.WriteLineAsync(db.Database.GenerateCreateScript());
            return 0;
        });

    /// <summary>
    /// A call cancelled at its deadline (<see cref="DatabaseDeadline"/>) makes Npgsql ask the server to cancel it and then
    /// wait for the answer, 2 s by default, before it breaks the connection. A server that hangs never answers, so that
    /// wait would come on top of every deadline: a quarter second, unless the connection string says otherwise.
    /// </summary>
    internal static string WithShortCancellation(string connectionString)
    {
        // Only a key the string itself sets counts: the plain builder holds exactly those.
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        if (given.ContainsKey("Cancellation Timeout") || given.ContainsKey("CancellationTimeout")) return connectionString;
        return new NpgsqlConnectionStringBuilder(connectionString) { CancellationTimeout = 250 }.ConnectionString;
    }

    public static string GetConnectionString(IConfiguration configuration) =>
        configuration.GetConnectionString("Default") is { Length: > 0 } cs
            ? cs
            : throw new StartupConfigurationException(
                "ConnectionStrings:Default is not set. Set the environment variable ConnectionStrings__Default " +
                "to an Npgsql connection string (scripts/pg.sh url prints one for the local database).");
}
