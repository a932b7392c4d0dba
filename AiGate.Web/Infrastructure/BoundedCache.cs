using System.Collections.Concurrent;

namespace AiGate.Web.Infrastructure;

/// <summary>
/// Values made once per key and shared, up to <paramref name="capacity"/> keys (the keys may come from clients): past it,
/// a missing value is made for the caller and not kept. The count is kept apart, since ConcurrentDictionary.Count takes
/// every lock of the dictionary.
/// </summary>
public sealed class BoundedCache<TKey, TValue>(int capacity, IEqualityComparer<TKey>? comparer = null) where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, TValue> _values = new(comparer);
    private int _count;

    public TValue GetOrAdd<TState>(TKey key, TState state, Func<TKey, TState, TValue> make)
    {
        if (_values.TryGetValue(key, out var value)) return value;
        value = make(key, state);
        if (Volatile.Read(ref _count) < capacity && _values.TryAdd(key, value)) Interlocked.Increment(ref _count);
        return value;
    }
}
