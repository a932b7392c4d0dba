using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace AiGate.Web.Tests.Infrastructure;

/// <summary>
/// A fake OpenAI (or OpenAI-compatible) API on loopback, speaking its documented wire format:
/// <c>POST /v1/chat/completions</c> as JSON or as <c>chat.completion.chunk</c> server-sent events
/// ending in <c>data: [DONE]</c>, with a usage-only last chunk when <c>stream_options.include_usage</c>
/// is set, <c>POST /v1/responses</c> and the legacy <c>POST /v1/completions</c> (FakeOpenAi.Responses.cs), and <c>GET /v1/models</c> (the health probe) as OpenAI's model list. Tests script the faults of
/// chat through <see cref="Mode"/> and of the model list through <see cref="ModelsMode"/>.
/// </summary>
public sealed partial class FakeOpenAi : IAsyncDisposable
{
    public enum Behaviour
    {
        Ok, Fail500, Fail429, Fail400, Hang, DropAfterTwoChunks, SlowStream, NoUsage,
        /// <summary>Streams half the reply's words, then sends nothing more (until the client leaves, 30 s at most).</summary>
        StallHalfway,
        /// <summary>Streams half the reply's words, then breaks the connection.</summary>
        DropHalfway,
        /// <summary>Streams half the reply's words, then an event whose JSON is cut off, then closes.</summary>
        MalformedHalfway,
        /// <summary>Streams the whole reply but reports 1 completion token in the usage chunk (or the JSON answer's usage).</summary>
        LowUsage,
    }

    /// <summary>OpenAI writes text as UTF-8 with only the escapes JSON requires (not System.Text.Json's default \u0022, \u003C…).</summary>
    private static readonly System.Text.Json.JsonSerializerOptions Wire = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private FakeUpstream _server = null!;
    public Behaviour Mode { get; set; } = Behaviour.Ok;
    /// <summary>The fault of <c>GET /v1/models</c> (the same faults as chat; the stream modes do not apply).</summary>
    public Behaviour ModelsMode { get; set; } = Behaviour.Ok;
    public string Reply { get; set; } = "Hello from the fake upstream";
    public int PromptTokens { get; set; } = 11;
    public int CompletionTokens { get; set; } = 7;
    public int CachedTokens { get; set; }
    /// <summary>How long a non-streamed answer takes to generate: OpenAI sends its headers only when it is done.</summary>
    public TimeSpan JsonDelay { get; set; }
    /// <summary>A pause before each streamed word (a model generating at a steady pace), outside the SlowStream mode.</summary>
    public TimeSpan WordDelay { get; set; }
    /// <summary>Requests whose client went away before the answer finished.</summary>
    public int Aborted => _aborted;
    private int _aborted;

    /// <summary>API keys this fake refuses as OpenAI refuses a revoked key: 401 <c>invalid_api_key</c>.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, byte> RevokedKeys { get; } = new(StringComparer.Ordinal);
    public Uri BaseUrl => new(_server.BaseUrl, "/v1");
    public IReadOnlyCollection<FakeUpstream.RecordedRequest> Requests => _server.Requests;
    public int ChatRequests => _server.Requests.Count(r => r.PathAndQuery == "/v1/chat/completions");
    public int ModelListRequests => _server.Requests.Count(r => r.PathAndQuery == "/v1/models");
    public int ImageRequests => _server.Requests.Count(r => r.PathAndQuery == "/v1/images/generations");
    public int ModerationRequests => _server.Requests.Count(r => r.PathAndQuery == "/v1/moderations");
    /// <summary>How many images <c>/v1/images/generations</c> returns; null = the request's <c>n</c> (a refused or partial batch returns fewer).</summary>
    public int? ImagesReturned { get; set; }
    public int TranscriptionRequests => _server.Requests.Count(r => r.PathAndQuery is "/v1/audio/transcriptions" or "/v1/audio/translations");
    /// <summary>The duration transcriptions report (json: <c>usage.seconds</c>, verbose_json: <c>duration</c>); the text formats report none.</summary>
    public double TranscriptionSeconds { get; set; } = 10;
    /// <summary>The last transcription upload's file bytes and fields.</summary>
    public (byte[] File, string FileName, Dictionary<string, string> Fields)? LastUpload { get; private set; }
    public int SpeechRequests => _server.Requests.Count(r => r.PathAndQuery == "/v1/audio/speech");
    /// <summary>When set, speech sends its first chunk and then waits for this before the rest (a test sees audio arrive before the end).</summary>
    public TaskCompletionSource? SpeechGate { get; set; }
    /// <summary>The audio every speech request returns, sent in four chunks.</summary>
    public static readonly byte[] SpeechAudio = [.. Enumerable.Range(0, 4000).Select(i => (byte)(i * 7))];

    public static async Task<FakeOpenAi> StartAsync()
    {
        var fake = new FakeOpenAi();
        fake._server = await FakeUpstream.StartAsync(app =>
        {
            app.MapPost("/v1/chat/completions", fake.ChatAsync);
            app.MapGet("/v1/models", fake.ModelsAsync);
            app.MapPost("/v1/responses", fake.ResponsesAsync);
            app.MapPost("/v1/completions", fake.CompletionsAsync);
            app.MapPost("/v1/embeddings", fake.EmbeddingsAsync);
            app.MapPost("/v1/images/generations", fake.ImagesAsync);
            app.MapPost("/v1/moderations", fake.ModerationsAsync);
            app.MapPost("/v1/audio/speech", fake.SpeechAsync);
            app.MapPost("/v1/audio/transcriptions", context => fake.TranscriptionAsync(context, "transcribe"));
            app.MapPost("/v1/audio/translations", context => fake.TranscriptionAsync(context, "translate"));
        });
        return fake;
    }

    public void Reset()
    {
        Mode = Behaviour.Ok;
        ModelsMode = Behaviour.Ok;
        ImagesReturned = null;
        SpeechGate = null;
        JsonDelay = TimeSpan.Zero;
        WordDelay = TimeSpan.Zero;
        _server.Requests.Clear();
        _aborted = 0;
    }

    /// <summary>OpenAI's <c>GET /v1/models</c>: <c>{"object":"list","data":[{"id","object":"model","created","owned_by"}]}</c>.</summary>
    private async Task ModelsAsync(HttpContext context)
    {
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, ModelsMode)) return;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(
                new JsonObject { ["id"] = "up-model-a", ["object"] = "model", ["created"] = 1686935002, ["owned_by"] = "organization-owner" },
                new JsonObject { ["id"] = "up-model-b", ["object"] = "model", ["created"] = 1686935002, ["owned_by"] = "organization-owner" }),
        }.ToJsonString(), context.RequestAborted);
    }

    /// <summary>
    /// OpenAI's <c>POST /v1/embeddings</c>: <c>{"object":"list","data":[{"object":"embedding","index","embedding"}],"model",
    /// "usage":{"prompt_tokens","total_tokens"}}</c>, one 3-dimension vector per input, <see cref="PromptTokens"/> as usage.
    /// </summary>
    private async Task EmbeddingsAsync(HttpContext context)
    {
        var body = (await System.Text.Json.JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body))!;
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, Mode)) return;
        var inputs = body["input"] is JsonArray array ? array.Count : 1;
        var data = new JsonArray();
        for (var i = 0; i < inputs; i++)
            data.Add(new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = new JsonArray(0.0023064255, -0.009327292, 0.015797347) });
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject
        {
            ["object"] = "list", ["data"] = data, ["model"] = body["model"]!.GetValue<string>(),
            ["usage"] = new JsonObject { ["prompt_tokens"] = PromptTokens, ["total_tokens"] = PromptTokens },
        }.ToJsonString(Wire), context.RequestAborted);
    }

    /// <summary>A valid 1×1 PNG, base64: the image every generation returns.</summary>
    public const string Png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    /// <summary>
    /// OpenAI's <c>POST /v1/images/generations</c>: <c>{"created","data":[{"b64_json"|"url","revised_prompt"}]}</c>; gpt-image
    /// models answer b64_json only and add <c>usage</c> in tokens. Refuses what OpenAI refuses: no prompt, n outside 1–10,
    /// n &gt; 1 for dall-e-3, response_format for gpt-image models.
    /// </summary>
    private async Task ImagesAsync(HttpContext context)
    {
        var body = (await System.Text.Json.JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body))!;
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, Mode)) return;
        var model = body["model"]?.GetValue<string>() ?? "dall-e-2";
        var n = body["n"]?.GetValue<int>() ?? 1;
        var gptImage = model.StartsWith("gpt-image", StringComparison.Ordinal);
        if (body["prompt"] is null || n is < 1 or > 10 || (model == "dall-e-3" && n != 1) || (gptImage && body["response_format"] is not null))
        {
            await Error(context, 400, "Invalid images request.", "invalid_request_error");
            return;
        }
        var url = !gptImage && body["response_format"]?.GetValue<string>() == "url";
        var data = new JsonArray();
        for (var i = 0; i < (ImagesReturned ?? n); i++)
            data.Add(url ? new JsonObject { ["url"] = "https://oaidalleapiprodscus.blob.core.windows.net/private/img-" + i + ".png", ["revised_prompt"] = "A revised prompt." }
                : new JsonObject { ["b64_json"] = Png, ["revised_prompt"] = gptImage ? null : "A revised prompt." });
        var answer = new JsonObject { ["created"] = 1713833628, ["data"] = data };
        if (gptImage)
            answer["usage"] = new JsonObject { ["total_tokens"] = 100, ["input_tokens"] = 50, ["output_tokens"] = 50, ["input_tokens_details"] = new JsonObject { ["text_tokens"] = 10, ["image_tokens"] = 40 } };
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(answer.ToJsonString(Wire), context.RequestAborted);
    }

    /// <summary>
    /// OpenAI's <c>POST /v1/audio/speech</c>: the audio bytes, chunked, with the format's content type (mp3 audio/mpeg,
    /// opus audio/ogg, aac audio/aac, flac audio/flac, wav audio/wav, pcm audio/pcm). Refuses a missing input or voice.
    /// </summary>
    private async Task SpeechAsync(HttpContext context)
    {
        var body = (await System.Text.Json.JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body))!;
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, Mode)) return;
        if (body["input"] is null || body["voice"] is null || body["model"] is null)
        {
            await Error(context, 400, "Missing input, voice or model.", "invalid_request_error");
            return;
        }
        context.Response.ContentType = (body["response_format"]?.GetValue<string>() ?? "mp3") switch
        {
            "opus" => "audio/ogg", "aac" => "audio/aac", "flac" => "audio/flac", "wav" => "audio/wav", "pcm" => "audio/pcm", _ => "audio/mpeg",
        };
        try
        {
            for (var i = 0; i < 4; i++)
            {
                await context.Response.Body.WriteAsync(SpeechAudio.AsMemory(i * 1000, 1000), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                if (i == 0 && SpeechGate is { } gate) await gate.Task.WaitAsync(TimeSpan.FromSeconds(10), context.RequestAborted);
            }
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _aborted);
        }
    }

    /// <summary>
    /// OpenAI's <c>POST /v1/audio/transcriptions</c> and <c>/translations</c> (multipart: file, model, response_format…):
    /// json <c>{"text","usage":{"type":"duration","seconds"}}</c>, verbose_json <c>{"task","language","duration","text","segments"}</c>,
    /// text, srt and vtt as plain text.
    /// </summary>
    private async Task TranscriptionAsync(HttpContext context, string task)
    {
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, Mode)) return;
        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        var file = form.Files["file"];
        if (file is null || form["model"].Count == 0)
        {
            await Error(context, 400, "Missing file or model.", "invalid_request_error");
            return;
        }
        using var copy = new MemoryStream();
        await file.CopyToAsync(copy, context.RequestAborted);
        LastUpload = (copy.ToArray(), file.FileName, form.Where(f => f.Key != "file").ToDictionary(f => f.Key, f => f.Value.ToString()));
        const string text = "Hello from the fake transcriber.";
        switch (form["response_format"].ToString())
        {
            case "verbose_json":
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(new JsonObject
                {
                    ["task"] = task, ["language"] = "english", ["duration"] = TranscriptionSeconds, ["text"] = text, ["segments"] = new JsonArray(),
                }.ToJsonString(Wire), context.RequestAborted);
                break;
            case "text" or "srt" or "vtt":
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync(text + "\n", context.RequestAborted);
                break;
            default:
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(new JsonObject
                {
                    ["text"] = text, ["usage"] = new JsonObject { ["type"] = "duration", ["seconds"] = TranscriptionSeconds },
                }.ToJsonString(Wire), context.RequestAborted);
                break;
        }
    }

    /// <summary>OpenAI's <c>POST /v1/moderations</c>: <c>{"id","model","results":[{"flagged","categories","category_scores","category_applied_input_types"}]}</c>, one result per input.</summary>
    private async Task ModerationsAsync(HttpContext context)
    {
        var body = (await System.Text.Json.JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body))!;
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, Mode)) return;
        var inputs = body["input"] switch { JsonArray a when a.All(i => i is JsonValue) => a.Select(i => i!.GetValue<string>()).ToList(), JsonValue v => [v.GetValue<string>()], _ => ["image"] };
        string[] categories = ["harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent", "self-harm",
            "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic"];
        var results = new JsonArray();
        foreach (var input in inputs)
        {
            var violent = input.Contains("kill", StringComparison.OrdinalIgnoreCase);
            JsonObject flags = [], scores = [], applied = [];
            foreach (var category in categories)
            {
                flags[category] = violent && category == "violence";
                scores[category] = violent && category == "violence" ? 0.91 : 0.0001;
                applied[category] = new JsonArray("text");
            }
            results.Add(new JsonObject { ["flagged"] = violent, ["categories"] = flags, ["category_scores"] = scores, ["category_applied_input_types"] = applied });
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject { ["id"] = "modr-970d409ef3bef3b70c73d8232df86e7d", ["model"] = "omni-moderation-2024-09-26", ["results"] = results }.ToJsonString(Wire),
            context.RequestAborted);
    }

    /// <summary>Plays the scripted fault, if any, as OpenAI answers it; true when the request is answered.</summary>
    private async Task<bool> FailedAsync(HttpContext context, Behaviour mode)
    {
        switch (mode)
        {
            case Behaviour.Fail500:
                await Error(context, 500, "The server had an error while processing your request.", "server_error");
                return true;
            case Behaviour.Fail429:
                context.Response.Headers.RetryAfter = "0";
                await Error(context, 429, "Rate limit reached for requests", "requests");
                return true;
            case Behaviour.Fail400:
                await Error(context, 400, "Invalid value for 'logit_bias': upstream says no.", "invalid_request_error");
                return true;
            case Behaviour.Hang:
                try { await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted); } catch (OperationCanceledException) { Interlocked.Increment(ref _aborted); }
                return true;
            default:
                return false;
        }
    }

    private async Task ChatAsync(HttpContext context)
    {
        var body = (await System.Text.Json.JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body))!;
        var ct = context.RequestAborted;
        if (await RefusedKeyAsync(context)) return;
        if (await FailedAsync(context, Mode)) return;

        var model = body["model"]!.GetValue<string>();
        var completionTokens = Mode == Behaviour.LowUsage ? 1 : CompletionTokens;
        var usage = new JsonObject
        {
            ["prompt_tokens"] = PromptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = PromptTokens + completionTokens,
            ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = CachedTokens, ["audio_tokens"] = 0 },
            ["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0, ["audio_tokens"] = 0, ["accepted_prediction_tokens"] = 0, ["rejected_prediction_tokens"] = 0 },
        };
        if (body["stream"]?.GetValue<bool>() != true)
        {
            if (JsonDelay > TimeSpan.Zero)
            {
                try { await Task.Delay(JsonDelay, ct); }
                catch (OperationCanceledException) { Interlocked.Increment(ref _aborted); return; }
            }
            context.Response.ContentType = "application/json";
            var answer = new JsonObject
            {
                ["id"] = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", ["object"] = "chat.completion", ["created"] = 1741570283, ["model"] = model + "-2024-07-18",
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = Reply, ["refusal"] = null, ["annotations"] = new JsonArray() },
                    ["logprobs"] = null, ["finish_reason"] = "stop",
                }),
                ["usage"] = usage, ["service_tier"] = "default", ["system_fingerprint"] = "fp_06737a9306",
            };
            if (Mode == Behaviour.NoUsage) answer.Remove("usage");   // as servers that report no usage at all answer
            if (body["messages"]?.ToJsonString().Contains("BODY AFTER HEADERS", StringComparison.Ordinal) == true)
                await AiGate.Web.Tests.Features.Providers.FakeAnthropic.HeadersFirstAsync(context, "application/json");
            await context.Response.WriteAsync(answer.ToJsonString(Wire), ct);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        // Some OpenAI-compatible servers ignore include_usage: NoUsage plays one of them.
        var includeUsage = body["stream_options"]?["include_usage"]?.GetValue<bool>() == true && Mode != Behaviour.NoUsage;
        var words = Reply.Split(' ');
        try
        {
            await Send(context, Chunk(model, new JsonObject { ["role"] = "assistant", ["content"] = "", ["refusal"] = null }, null, includeUsage));
            for (var i = 0; i < words.Length; i++)
            {
                if (Mode == Behaviour.DropAfterTwoChunks && i == 2)
                {
                    // Let the first chunks reach the gateway and its client, then break the connection
                    // (an immediate reset can discard data the peer has not read yet).
                    await Task.Delay(300, ct);
                    context.Abort();
                    return;
                }
                if (Mode == Behaviour.SlowStream) await Task.Delay(200, ct);
                else if (WordDelay > TimeSpan.Zero) await Task.Delay(WordDelay, ct);
                if (i == words.Length / 2 && await BreakHalfwayAsync(context, model)) return;
                await Send(context, Chunk(model, new JsonObject { ["content"] = (i == 0 ? "" : " ") + words[i] }, null, includeUsage));
            }
            await Send(context, Chunk(model, [], "stop", includeUsage));
            if (includeUsage)
                await Send(context, new JsonObject
                {
                    ["id"] = "chatcmpl-fake", ["object"] = "chat.completion.chunk", ["created"] = 1741570283, ["model"] = model,
                    ["system_fingerprint"] = "fp_06737a9306", ["choices"] = new JsonArray(), ["usage"] = usage,
                }.ToJsonString());
            await context.Response.WriteAsync("data: [DONE]\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _aborted);
        }
        catch (IOException)
        {
            Interlocked.Increment(ref _aborted);
        }
    }

    /// <summary>Plays the halfway faults; true when the stream is over.</summary>
    private async Task<bool> BreakHalfwayAsync(HttpContext context, string model)
    {
        switch (Mode)
        {
            case Behaviour.StallHalfway:
                await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted);
                return true;
            case Behaviour.DropHalfway:
                await Task.Delay(300, context.RequestAborted);   // let the chunks so far reach the gateway before the reset
                context.Abort();
                return true;
            case Behaviour.MalformedHalfway:
                await context.Response.WriteAsync("data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"" + model +
                    "\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" and the\n\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                return true;
            default:
                return false;
        }
    }

    private static string Chunk(string model, JsonObject delta, string? finish, bool includeUsage)
    {
        var chunk = new JsonObject
        {
            ["id"] = "chatcmpl-fake", ["object"] = "chat.completion.chunk", ["created"] = 1741570283, ["model"] = model,
            ["system_fingerprint"] = "fp_06737a9306",
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish }),
        };
        if (includeUsage) chunk["usage"] = null;   // as OpenAI does on every chunk but the last when include_usage is set
        return chunk.ToJsonString(Wire);
    }

    private static async Task Send(HttpContext context, string json)
    {
        await context.Response.WriteAsync("data: " + json + "\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    /// <summary>OpenAI's answer to a key it does not accept (revoked, deleted): 401, code <c>invalid_api_key</c>, the key shown masked.</summary>
    private async Task<bool> RefusedKeyAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        var key = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..] : "";
        if (!RevokedKeys.ContainsKey(key)) return false;
        context.Response.StatusCode = 401;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = $"Incorrect API key provided: {key[..Math.Min(3, key.Length)]}***{key[^Math.Min(4, key.Length)..]}. You can find your API key at https://platform.openai.com/account/api-keys.",
                ["type"] = "invalid_request_error", ["param"] = null, ["code"] = "invalid_api_key",
            },
        }.ToJsonString());
        return true;
    }

    private static Task Error(HttpContext context, int status, string message, string type)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = null },
        }.ToJsonString());
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
