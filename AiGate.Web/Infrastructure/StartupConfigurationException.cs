namespace AiGate.Web.Infrastructure;

/// <summary>
/// Configuration that makes the app refuse to start (a missing connection string, a development-only
/// component switched on in Production). Program prints the message, without a stack trace, and exits 1.
/// </summary>
public sealed class StartupConfigurationException(string message) : Exception(message);
