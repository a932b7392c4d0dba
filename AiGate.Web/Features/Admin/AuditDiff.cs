using System.Text.Json;

namespace AiGate.Web.Features.Admin;

/// <summary>One field of an audited change: its path in the target's state, the value before and after (null when absent).</summary>
public sealed record AuditDiffLine(string Field, string? Before, string? After)
{
    public bool Changed => !string.Equals(Before, After, StringComparison.Ordinal);
}

/// <summary>
/// Before → after of an audit entry as field lines, for people: the two JSON states are flattened to dotted paths
/// (<c>pricing.input</c>, <c>aliases[0]</c>) and lined up, changed fields first in the order they appear. A state that
/// is not JSON (plain text from an older caller) is one line, <c>(value)</c>.
/// </summary>
public static class AuditDiff
{
    private const int MaxLines = 200;

    public static IReadOnlyList<AuditDiffLine> Compare(string? before, string? after)
    {
        var left = Flatten(before);
        var right = Flatten(after);
        var fields = new List<string>(left.Count + right.Count);
        foreach (var (field, _) in left) fields.Add(field);
        foreach (var (field, _) in right) if (!left.ContainsKey(field)) fields.Add(field);

        var changed = new List<AuditDiffLine>();
        var same = new List<AuditDiffLine>();
        foreach (var field in fields)
        {
            var line = new AuditDiffLine(field, left.GetValueOrDefault(field), right.GetValueOrDefault(field));
            (line.Changed ? changed : same).Add(line);
        }
        changed.AddRange(same);
        return changed.Count > MaxLines ? changed[..MaxLines] : changed;
    }

    private static Dictionary<string, string> Flatten(string? state)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        if (state is null) return fields;
        try
        {
            using var document = JsonDocument.Parse(state);
            Walk(document.RootElement, "", fields);
        }
        catch (JsonException)
        {
            fields["(value)"] = state;
        }
        return fields;
    }

    private static void Walk(JsonElement element, string path, Dictionary<string, string> fields)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object when element.EnumerateObject().Any():
                foreach (var property in element.EnumerateObject())
                    Walk(property.Value, path.Length == 0 ? property.Name : $"{path}.{property.Name}", fields);
                break;
            case JsonValueKind.Array when element.GetArrayLength() > 0:
                var i = 0;
                foreach (var item in element.EnumerateArray()) Walk(item, $"{path}[{i++}]", fields);
                break;
            default:
                fields[path.Length == 0 ? "(value)" : path] = element.ValueKind == JsonValueKind.String ? element.GetString()! : element.GetRawText();
                break;
        }
    }
}
