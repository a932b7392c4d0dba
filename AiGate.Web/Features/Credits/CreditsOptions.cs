using System.ComponentModel.DataAnnotations;

namespace AiGate.Web.Features.Credits;

public sealed class CreditsOptions
{
    public const string Section = "Credits";

    /// <summary>Largest slice of a balance one instance leases at a time (micro-USD). It takes a quarter of what is available, within this cap.</summary>
    [Range(1, long.MaxValue)]
    public long MaxLeaseMicros { get; set; } = 5_000_000;

    /// <summary>Output tokens reserved (and sent upstream as the limit) when a request sets no max_tokens, within the model's own maximum.</summary>
    [Range(1, 1_000_000)]
    public int DefaultMaxOutputTokens { get; set; } = 4096;

    /// <summary>How often the usage writer flushes (ms); also the most usage a kill -9 can lose.</summary>
    [Range(10, 5000)]
    public int FlushIntervalMs { get; set; } = 200;

    /// <summary>
    /// How often an open stream's usage so far is checkpointed to the database (seconds). A stream on an instance
    /// that dies is billed from its last checkpoint, so at most about twice this much output goes unbilled.
    /// </summary>
    [Range(1, 60)]
    public int CheckpointSeconds { get; set; } = 2;

    /// <summary>A lease not renewed for this long belongs to a dead instance and is returned by the sweeper.</summary>
    [Range(10, 3600)]
    public int LeaseTtlSeconds { get; set; } = 60;

    /// <summary>
    /// Serve without reserving or charging: only for bench/run.sh's "metering off" comparison.
    /// The app refuses to start with it in Production.
    /// </summary>
    public bool DisableMeteringForBenchmarks { get; set; }

    /// <summary>The size of one display credit in USD (DESIGN "Money": 1 credit = 0.01 USD). Money itself stays integer micro-USD.</summary>
    [Range(typeof(decimal), "0.000001", "1000000", ParseLimitsInInvariantCulture = true, ConvertValueInInvariantCulture = true)]
    public decimal UsdPerCredit { get; set; } = 0.01m;
}
