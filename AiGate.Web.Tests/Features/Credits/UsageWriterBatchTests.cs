using AiGate.Web.Features.Credits;
using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Credits;

/// <summary>The credits fixture with the longest flush interval the options allow (5 s).</summary>
public sealed class SlowFlushApp : CreditsApp
{
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Credits:FlushIntervalMs"] = "5000",
    };
}

/// <summary>
/// The usage writer writes a whole batch as soon as it waits, not after the interval (issue 16: waiting out the interval
/// before every batch capped the writer at about 4,000 calls a second, and the channel's bound then made every request
/// wait for it).
/// </summary>
public sealed class UsageWriterBatchTests(SlowFlushApp app) : IClassFixture<SlowFlushApp>
{
    [Fact]
    public async Task Whole_batches_are_written_at_once_and_the_rest_waits_for_the_interval()
    {
        var userId = await app.CreateUserAsync();
        await app.GrantAsync(userId, 10_000_000);
        var writer = app.Services.GetRequiredService<UsageWriter>();
        var at = DateTimeOffset.UtcNow;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        for (var i = 0; i < 2_500; i++)
            await writer.EnqueueAsync(new UsageRecord($"batch-{Guid.NewGuid():N}", userId, Guid.NewGuid(), Guid.NewGuid(), CreditsApp.Model,
                "fake", new TokenUsage(2, 1), 3, Streamed: false, Status: 200, LatencyMs: 1, TimeToFirstByteMs: 1, at), CancellationToken.None);

        // Two whole batches go before the first interval is over (waiting out an interval before each, they took 10 s);
        // the last 500 records wait for their interval.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (writer.Pending > 500 && DateTime.UtcNow < deadline) await Task.Delay(20);
        var written = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        Assert.Equal(500, writer.Pending);
        Assert.True(written < TimeSpan.FromSeconds(5), $"two whole batches took {written.TotalSeconds:F1} s, as long as waiting out an interval each");
        await Task.Delay(300);
        Assert.Equal(500, writer.Pending);
        Assert.Equal(2_000, await app.Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'"));
        // Each written call is charged once: the balance fell by 2,000 × 3 micro-USD and matches its ledger.
        var (balance, _, ledger) = await app.MoneyAsync(userId);
        Assert.Equal(10_000_000 - 2_000 * 3, balance);
        Assert.Equal(balance, ledger);
    }
}
