using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Npgsql;

namespace AiGate.Web.Infrastructure;

/// <summary>A running instance of the app, as it last reported itself.</summary>
public sealed class AppInstance
{
    public required string Id { get; set; }
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset LastSeenAt { get; set; }

    internal sealed class Configuration : IEntityTypeConfiguration<AppInstance>
    {
        public void Configure(EntityTypeBuilder<AppInstance> b)
        {
            b.ToTable("app_instances");
            b.Property(i => i.Id).HasMaxLength(64);
            b.HasIndex(i => i.LastSeenAt);
        }
    }
}

/// <summary>
/// Each instance reports itself every 10 s; an instance not seen for 30 s is gone. Features that
/// split a shared budget between instances (rate limits) divide by <see cref="LiveInstances"/>.
/// If the database cannot be reached, the last count stands.
/// </summary>
public sealed partial class InstanceRegistry(NpgsqlDataSource dataSource, ILogger<InstanceRegistry> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private volatile int _live = 1;

    public string InstanceId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    public int LiveInstances => _live;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            await ReportAsync(stoppingToken);
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    public async Task ReportAsync(CancellationToken ct)
    {
        try
        {
            // One statement: report ourselves, forget long-gone instances, count the others still alive.
            await using var command = dataSource.CreateCommand("""
                with me as (
                    insert into app_instances (id, started_at, last_seen_at) values ($1, now(), now())
                    on conflict (id) do update set last_seen_at = now()),
                gone as (delete from app_instances where last_seen_at < now() - interval '1 hour')
                select 1 + count(*)::int from app_instances where id <> $1 and last_seen_at > now() - interval '30 seconds'
                """);
            command.Parameters.Add(new() { Value = InstanceId });
            _live = Math.Max(1, (int)(await command.ExecuteScalarAsync(ct))!);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogReportFailed(ex);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await using var command = dataSource.CreateCommand("delete from app_instances where id = $1");
            command.Parameters.Add(new() { Value = InstanceId });
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        // ObjectDisposedException: a second stop of the host (test fixtures dispose twice) after the data
        // source is gone; the row then simply ages out like a crashed instance's.
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or OperationCanceledException or ObjectDisposedException)
        {
            LogReportFailed(ex);
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not report this instance")]
    private partial void LogReportFailed(Exception ex);
}
