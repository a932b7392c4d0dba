using AiGate.Web.Data;
using AiGate.Web.Infrastructure;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AiGate.Web.Tests.Data;

/// <summary>
/// The API's bound on waiting for PostgreSQL, apart from a database: the deadline ends a wait the call itself ignores,
/// the database then counts as down for a second (calls fail at once), and Npgsql's cancellation wait is short unless
/// the connection string says otherwise. The hung database itself is <c>DatabaseOutageTests</c>.
/// </summary>
public sealed class DatabaseDeadlineTests
{
    /// <summary>A monotonic clock that moves only when told.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Interlocked.Read(ref _ticks);
        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    private static DatabaseDeadline Deadline(ManualClock clock, int timeoutMs = 200) =>
        new(Options.Create(new DatabaseOptions { ApiTimeoutMs = timeoutMs }), clock);

    [Fact]
    public async Task A_call_that_ignores_its_token_is_abandoned_at_the_deadline_and_the_database_counts_as_down_for_a_second()
    {
        var clock = new ManualClock();
        var database = Deadline(clock);
        // A connect to a server that accepted the socket and does not answer (until 10 s later, so a wait that ignores the
        // deadline fails this test instead of hanging it).
        var never = new TaskCompletionSource<int>();
        _ = Task.Delay(TimeSpan.FromSeconds(10)).ContinueWith(_ => never.TrySetResult(1), TaskScheduler.Default);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<DatabaseUnavailableException>(() =>
            database.RunAsync(static (pending, _) => pending.Task, never, CancellationToken.None));
        Assert.IsType<TaskCanceledException>(error.InnerException);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"{watch.Elapsed}");
        Assert.True(database.Down);

        // While down, a call is not even started.
        var started = false;
        await Assert.ThrowsAsync<DatabaseUnavailableException>(() =>
            database.RunAsync((_, _) => { started = true; return Task.FromResult(1); }, 0, CancellationToken.None));
        Assert.False(started);

        // A second later the next call tries again, and an answer is an answer.
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(database.Down);
        Assert.Equal(7, await database.RunAsync(static (_, _) => Task.FromResult(7), 0, CancellationToken.None));
    }

    [Fact]
    public async Task The_callers_own_abort_and_a_query_postgresql_refused_are_not_an_outage()
    {
        var clock = new ManualClock();
        var database = Deadline(clock, timeoutMs: 30_000);
        using var aborted = new CancellationTokenSource();
        var pending = database.RunAsync(static (_, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(_ => 0, TaskScheduler.Default), 0, aborted.Token);
        await aborted.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        Assert.False(database.Down);

        var bug = new PostgresException("column does not exist", "ERROR", "ERROR", "42703");
        Assert.Same(bug, await Assert.ThrowsAsync<PostgresException>(() => database.RunAsync<int, int>((_, _) => throw bug, 0, CancellationToken.None)));
        Assert.False(database.Down);
    }

    [Theory]
    [InlineData("Host=db;Database=aigate", 250)]
    [InlineData("Host=db;Database=aigate;Cancellation Timeout=5000", 5000)]
    [InlineData("Host=db;Database=aigate;CancellationTimeout=-1", -1)]
    public void Npgsql_waits_a_quarter_second_for_a_cancellation_unless_the_connection_string_says(string connectionString, int expected) =>
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(DataExtensions.WithShortCancellation(connectionString)).CancellationTimeout);
}
