namespace AiGate.Web.Features.ProviderHealth;

/// <summary>
/// The rules that turn probe results and traffic counts into a state. Pure functions, so the thresholds
/// are tested without a clock or a database.
/// </summary>
public static class HealthRules
{
    public static HealthState Worst(HealthState a, HealthState b) => a >= b ? a : b;

    /// <summary>
    /// The probe state machine: a failure makes a provider degraded, <see cref="ProviderHealthOptions.FailuresToDown"/>
    /// in a row make it down (and a failure keeps a down provider down); a success heals a degraded provider at once, but a down one needs
    /// <see cref="ProviderHealthOptions.SuccessesToRecover"/> in a row, so one lucky probe does not send traffic back.
    /// </summary>
    public static (HealthState State, int Failures, int Successes) AfterProbe(
        HealthState probeState, int failures, int successes, bool ok, ProviderHealthOptions options)
    {
        if (ok)
        {
            successes++;
            var recovered = probeState != HealthState.Down || successes >= options.SuccessesToRecover;
            return (recovered ? HealthState.Healthy : HealthState.Down, 0, successes);
        }
        failures++;
        var down = probeState == HealthState.Down || failures >= options.FailuresToDown;   // a failure never improves a down provider
        return (down ? HealthState.Down : HealthState.Degraded, failures, 0);
    }

    /// <summary>What live traffic says: nothing below the minimum number of calls, else by the share that failed.</summary>
    public static HealthState FromTraffic(long calls, long failures, ProviderHealthOptions options)
    {
        if (calls < options.PassiveMinCalls || calls <= 0) return HealthState.Healthy;
        var ratio = (double)failures / calls;
        return ratio >= options.DownFailureRatio ? HealthState.Down
            : ratio >= options.DegradedFailureRatio ? HealthState.Degraded
            : HealthState.Healthy;
    }
}
