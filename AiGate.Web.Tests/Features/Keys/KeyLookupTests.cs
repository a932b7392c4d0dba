using System.Data.Common;
using System.Net;
using System.Net.Http.Headers;
using AiGate.Web.Data;
using AiGate.Web.Features.Keys;
using AiGate.Web.Infrastructure;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace AiGate.Web.Tests.Features.Keys;

/// <summary>
/// Calls that miss the key cache together (a burst on a new key, a cold cache after a deploy) share one lookup: the
/// database sees one query per key, not one per call, and no call of the burst waits behind the others' queries for
/// its deadline (<c>Database:ApiTimeoutMs</c>). A revocation's notice is not undone by a lookup that read the key before
/// it, and calls after the notice do not join such a lookup.
/// </summary>
public sealed class KeyLookupTests(KeyLookupTests.PatientApp app) : IClassFixture<KeyLookupTests.PatientApp>
{
    /// <summary>The app with a deadline long enough for the test to hold the key table while it counts the lookups.</summary>
    public sealed class PatientApp : AiGateApp
    {
        public HeldLookup Held { get; } = new();

        protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Database:ApiTimeoutMs"] = "15000" };

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.ConfigureServices(s => s.ConfigureDbContext<AppDbContext>(o => o.AddInterceptors(Held)));
        }
    }

    /// <summary>
    /// Once armed with a key's hash, holds the next lookup of that key after PostgreSQL ran it (its snapshot taken, the
    /// key read) until released: a lookup slow to come back, as over a congested network. Other lookups (the start's
    /// warm-up, other tests' keys) pass.
    /// </summary>
    public sealed class HeldLookup : DbCommandInterceptor
    {
        private byte[]? _hash;
        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Arm(byte[] hash) => Volatile.Write(ref _hash, hash);

        public override async ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result,
            CancellationToken cancellationToken = default)
        {
            if (Volatile.Read(ref _hash) is { } hash && command.CommandText.StartsWith($"-- {ApiKeyCache.LookupTag}", StringComparison.Ordinal) &&
                command.Parameters.Cast<DbParameter>().Any(p => p.Value is byte[] value && value.AsSpan().SequenceEqual(hash)) &&
                Interlocked.CompareExchange(ref _hash, null, hash) == hash)
            {
                Reached.SetResult();
                await Released.Task;
            }
            return result;
        }
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

    [Fact]
    public async Task A_lookup_that_ran_across_a_revocation_is_not_kept_and_calls_after_the_notice_do_not_wait_for_it()
    {
        var userId = await app.CreateUserAsync();
        ApiKey key;
        string secret;
        await using (var scope = app.Services.CreateAsyncScope())
            (key, secret) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().IssueAsync(userId, "held", new KeyLimits(), CancellationToken.None);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        _ = app.Services.GetRequiredService<ApiKeyCache>();   // subscribed before the test, so it hears each notice first
        var revoked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Services.GetRequiredService<CacheNotifications>().Subscribe(p => { if (p == $"key:{key.Id}") revoked.TrySetResult(); });

        try
        {
            app.Held.Arm(app.Services.GetRequiredService<ApiKeyHasher>().Hash(secret));
            var first = client.GetAsync("/api/v1/models");
            await app.Held.Reached.Task.WaitAsync(TimeSpan.FromSeconds(10));   // the lookup has read the key, still valid
            await using (var scope = app.Services.CreateAsyncScope())
                Assert.True(await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>().RevokeAsync(userId, key.Id, CancellationToken.None));
            await revoked.Task.WaitAsync(TimeSpan.FromSeconds(10));

            // A call after the notice looks the key up again, instead of waiting for the held lookup's answer.
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/models").WaitAsync(TimeSpan.FromSeconds(10))).StatusCode);

            app.Held.Released.TrySetResult();
            Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);   // it came before the revocation
            // What the held lookup read (the key before its revocation) was not kept.
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/models")).StatusCode);
        }
        finally
        {
            app.Held.Released.TrySetResult();   // a failed assertion must not leave the lookup held
        }
    }

    /// <summary>Key lookups of this test's database waiting on a lock (EF writes the query's tag first, as a comment).</summary>
    private Task<long> WaitingLookupsAsync() => app.Database.ScalarAsync<long>($"""
        select count(*) from pg_stat_activity
        where datname = '{app.Database.Name}' and wait_event_type = 'Lock' and query like '-- {ApiKeyCache.LookupTag}%'
        """);
}
