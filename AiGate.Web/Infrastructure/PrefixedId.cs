namespace AiGate.Web.Infrastructure;

/// <summary>Our ids as users see them: a prefix, then a time-ordered GUID's 32 hex digits ("req_0193…", "chatcmpl-0193…").</summary>
public static class PrefixedId
{
    /// <summary>A new id, made as one string (the hot path makes two or three per call).</summary>
    public static string New(string prefix) => string.Create(prefix.Length + 32, (prefix, Guid.CreateVersion7()), static (span, s) =>
    {
        s.prefix.CopyTo(span);
        s.Item2.TryFormat(span[s.prefix.Length..], out _, "N");
    });
}
