using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;

namespace AiGate.Web.Features.Gateway;

/// <summary>
/// How many requests each account has in flight on this instance, capped at
/// <see cref="GatewayOptions.MaxConcurrentRequestsPerAccount"/>. Checked before the body is read, so an
/// account that opens more calls than the cap is refused without this instance reading or parsing their
/// bodies (issue 11 #5). One counter per account that ever called, a few bytes each.
/// </summary>
public sealed class AccountConcurrency(IOptions<GatewayOptions> options)
{
    private readonly ConcurrentDictionary<Guid, StrongBox<int>> _inFlight = new();
    private readonly int _max = options.Value.MaxConcurrentRequestsPerAccount;

    /// <summary>A place for one request (dispose it when the request ends); <see cref="Slot.Entered"/> is false when the account is at its cap.</summary>
    public Slot TryEnter(Guid accountId)
    {
        var count = _inFlight.GetOrAdd(accountId, static _ => new StrongBox<int>());
        if (Interlocked.Increment(ref count.Value) <= _max) return new Slot(count);
        Interlocked.Decrement(ref count.Value);
        return default;
    }

    /// <summary>429 in OpenAI's envelope: SDKs retry it after Retry-After, by when a call has likely ended.</summary>
    public Task RefuseAsync(HttpContext context) => ApiErrors.WriteAsync(context, StatusCodes.Status429TooManyRequests,
        $"Too many requests in flight for this account: at most {_max} at once. Please retry when one has finished.",
        "requests", "concurrency_limit_exceeded", retryAfter: TimeSpan.FromSeconds(1));

    public readonly struct Slot : IDisposable
    {
        private readonly StrongBox<int>? _count;

        internal Slot(StrongBox<int> count) => _count = count;

        public bool Entered => _count is not null;

        public void Dispose()
        {
            if (_count is not null) Interlocked.Decrement(ref _count.Value);
        }
    }
}
