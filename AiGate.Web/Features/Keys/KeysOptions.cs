namespace AiGate.Web.Features.Keys;

public sealed class KeysOptions
{
    public const string Section = "Keys";

    /// <summary>
    /// Base64 of at least 32 random bytes; set <c>Keys__Pepper</c> in Production (the app refuses to
    /// start without it). Changing it invalidates every issued key.
    /// </summary>
    public string? Pepper { get; set; }

    /// <summary>Issue <c>ag_live_</c> keys (Production) or <c>ag_test_</c> keys (everywhere else).</summary>
    public bool LiveKeys { get; set; }

    /// <summary>How long a looked-up key stays cached when no revocation notice arrives (the fallback for a lost LISTEN connection).</summary>
    public int CacheSeconds { get; set; } = 15;

    /// <summary>
    /// While the database is unreachable, a key that was valid when last loaded keeps working this long after
    /// that load (bounded stale-if-error); billable calls stop earlier if the instance's credit leases lapse.
    /// Keys never seen (or seen longer ago) get 503 with Retry-After.
    /// </summary>
    public int StaleIfErrorSeconds { get; set; } = 60;
}
