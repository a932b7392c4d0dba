using System.Net;
using AiGate.Web.Features.Keys;
using AiGate.Web.Tests.Infrastructure;
using Npgsql;

namespace AiGate.Web.Tests.Features.Keys;

/// <summary>
/// Calls that miss the key cache together (a burst on a new key, a cold cache after a deploy) share one lookup: the
/// database sees one query per key, not one per call, and no call of the burst waits behind the others' queries for
/// its deadline (<c>Database:ApiTimeoutMs</c>).
/// </summary>
public sealed class KeyLookupTests(KeyLookupTests.PatientApp app) : IClassFixture<KeyLookupTests.PatientApp>
{
    /// <summary>The app with a deadline long enough for the test to hold the key table while it counts the lookups.</summary>
    public sealed class PatientApp : AiGateApp
    {
        protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Database:ApiTimeoutMs"] = "15000" };
    }

    [Fact]
    public async Task Calls_that_miss_the_cache_together_wait_for_one_lookup()
    {
        var (client, _, _) = await app.CreateApiClientAsync();

        // Hold the key table, so the lookup waits on its lock while the whole burst arrives.
        await using var connection = new NpgsqlConnection(app.Database.ConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var command = new NpgsqlCommand("lock table api_keys in access exclusive mode", connection, transaction))
            await command.ExecuteNonQueryAsync();

        var calls = Enumerable.Range(0, 20).Select(_ => client.GetAsync("/api/v1/models")).ToArray();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await WaitingLookupsAsync() == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "no key lookup reached the database");
            await Task.Delay(20);
        }
        await Task.Delay(1000);   // the rest of the burst reaches the cache; each would be a waiting lookup of its own
        Assert.Equal(1, await WaitingLookupsAsync());

        await transaction.CommitAsync();
        var responses = await Task.WhenAll(calls);
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
    }

    /// <summary>Key lookups of this test's database waiting on a lock (EF writes the query's tag first, as a comment).</summary>
    private Task<long> WaitingLookupsAsync() => app.Database.ScalarAsync<long>($"""
        select count(*) from pg_stat_activity
        where datname = '{app.Database.Name}' and wait_event_type = 'Lock' and query like '-- {ApiKeyCache.LookupTag}%'
        """);
}
