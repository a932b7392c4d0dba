using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace AiGate.Web.Pages;

/// <summary>The friendly error page for unhandled exceptions (/Error) and status codes (/Error/404). Never shows internals.</summary>
[ResponseCache(Duration = 0, Location = ResponseCacheLocation.None, NoStore = true)]
[IgnoreAntiforgeryToken]
public sealed class ErrorModel : PageModel
{
    public string Title { get; private set; } = "Something went wrong";
    public string Message { get; private set; } = "";
    public string RequestId { get; private set; } = "";

    public void OnGet(int? code) => Describe(code);
    public void OnPost(int? code) => Describe(code);

    private void Describe(int? code)
    {
        RequestId = HttpContext.TraceIdentifier;   // the same id as the X-Request-Id header and the logs
        var status = code ?? StatusCodes.Status500InternalServerError;
        (Title, Message) = status switch
        {
            404 => ("Page not found", "There is nothing at this address. Check the link, or start again from the home page."),
            403 => ("Not allowed", "Your account cannot open this page."),
            400 => ("Bad request", "The request could not be understood. Go back and try again."),
            429 => ("Too many requests", "Slow down a little and try again in a minute."),
            _ => ("Something went wrong", "We could not finish that request. It has been logged; please try again in a moment."),
        };
        if (code is not null) Response.StatusCode = status;
    }
}
