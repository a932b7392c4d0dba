using System.Diagnostics;
using Xunit.Abstractions;
using AiGate.Web.Data;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Accounts;

/// <summary>
/// A log-in for an unknown address must cost the same password-hash work as one for a known address, or its answer
/// comes back faster and tells that the address has no account. The app's own hasher is wrapped to count checks.
/// </summary>
public sealed class LoginHashWorkTests(LoginHashWorkTests.App app, ITestOutputHelper output) : IClassFixture<LoginHashWorkTests.App>
{
    public sealed class App : AccountsApp
    {
        public int Checks => _checks;
        private int _checks;

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.ConfigureTestServices(s => s.AddScoped<IPasswordHasher<AppUser>>(sp =>
                new Counting(ActivatorUtilities.CreateInstance<PasswordHasher<AppUser>>(sp), () => Interlocked.Increment(ref _checks))));
        }

        private sealed class Counting(PasswordHasher<AppUser> inner, Action counted) : IPasswordHasher<AppUser>
        {
            public string HashPassword(AppUser user, string password) => inner.HashPassword(user, password);

            public PasswordVerificationResult VerifyHashedPassword(AppUser user, string hashedPassword, string providedPassword)
            {
                counted();
                return inner.VerifyHashedPassword(user, hashedPassword, providedPassword);
            }
        }
    }

    [Fact]
    public async Task Every_log_in_checks_one_password_hash_whether_or_not_the_address_has_an_account()
    {
        await app.CreateUserAsync("hash-known@example.com", "password123");
        await app.CreateUserAsync("hash-unconfirmed@example.com", "password123", confirmed: false);
        using var session = app.NewSession();
        await session.LogInAsync("warm-up@example.com", "password123");   // the unknown-address hash is made once, on first use

        foreach (var (email, password) in new[]
        {
            ("hash-known@example.com", "wrong-password"), ("hash-nobody@example.com", "wrong-password"), ("hash-unconfirmed@example.com", "wrong-password"),
            ("hash-unconfirmed@example.com", "password123"), ("hash-known@example.com", "password123"),
        })
        {
            var before = app.Checks;
            await session.LogInAsync(email, password);
            Assert.True(app.Checks - before == 1, $"{email} with {password}: {app.Checks - before} hash checks");
        }
    }

    [Fact]
    public async Task An_unknown_address_takes_about_as_long_to_refuse_as_a_known_one()
    {
        await app.CreateUserAsync("timing-known@example.com", "password123");
        using var session = app.NewSession();
        await session.LogInAsync("timing-warm-up@example.com", "password123");
        var known = new List<double>();
        var unknown = new List<double>();
        for (var i = 0; i < 10; i++)
        {
            // Wrong passwords on the known account would lock it after five: alternate a right one in (it also costs one check).
            known.Add(await TimeAsync(() => session.LogInAsync("timing-known@example.com", i % 2 == 0 ? "wrong-password" : "password123")));
            unknown.Add(await TimeAsync(() => session.LogInAsync($"timing-nobody-{i}@example.com", "wrong-password")));
        }
        output.WriteLine($"median: unknown {Median(unknown):0.0} ms, known {Median(known):0.0} ms");
        // Generous: a 210,000-iteration PBKDF2 check dominates both; without it the unknown address answers in a fraction.
        Assert.True(Median(unknown) >= 0.5 * Median(known), $"unknown {Median(unknown):0.0} ms vs known {Median(known):0.0} ms");
    }

    private static async Task<double> TimeAsync(Func<Task> action)
    {
        var watch = Stopwatch.StartNew();
        await action();
        return watch.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
