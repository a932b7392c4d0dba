namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// Test classes that measure the test process itself (its live heap) run in this collection: after every parallel
/// class has finished, one at a time, so another class starting an app of its own cannot pass for theirs.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class Alone
{
    public const string Name = "alone in the process";
}
