using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Gateway;
using AiGate.Web.Features.Models;
using AiGate.Web.Features.Providers;
using static AiGate.Web.Tests.Features.Providers.TranslatorHarness;

namespace AiGate.Web.Tests.Features.Providers;

/// <summary>
/// The chat endpoint reads a body as a document and an OpenAI-kind route forwards its bytes with only the model, the output
/// limit and <c>stream_options</c> rewritten (issue 16); other routes parse nodes from the same bytes. Both ways must send
/// the upstream the same JSON, and count the same prompt, as the node path always did.
/// </summary>
public sealed class OpenAiRequestRewriteTests
{
    private static Provider Upstream(string baseUrl) => TranslatorHarness.Upstream("openai", ProviderKind.OpenAi, baseUrl, "sk-test", OpenAiAdapter.Instance);

    public static TheoryData<string> Bodies => new()
    {
        """{"model":"m","messages":[{"role":"user","content":"hi"}]}""",
        """{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16}""",
        """{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"max_completion_tokens":32}""",
        """{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":32}""",
        """{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":null,"max_completion_tokens":null}""",
        """{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}""",
        """{"model":"m","stream":true,"stream_options":{"include_usage":false,"extra":1},"messages":[{"role":"user","content":"hi"}]}""",
        """{"model":"m","stream":true,"stream_options":null,"messages":[{"role":"user","content":"hi"}],"max_tokens":8}""",
        """{"model":"m","stream":false,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}""",
        """
        {  "messages" : [ {"role":"system","content":"Ünïcode \u00e9 \"quoted\" \ud83d\ude00 <b>"},
             {"role":"user","name":"ann","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]},
             {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
             {"role":"tool","tool_call_id":"c1","content":"42"}],
           "model" : "m", "temperature": 0.5, "logit_bias": {"50256": -100}, "user": "u-1",
           "tools": [ {"type":"function","function":{"name":"f","description":"Füße","parameters":{"type":"object"}}} ],
           "response_format": {"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"}}} }
        """,
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public void The_forwarded_bytes_are_the_same_json_as_the_node_path(string body)
    {
        foreach (var baseUrl in new[] { "https://api.openai.com/v1", "http://compatible.test/v1" })
        {
            var provider = Upstream(baseUrl);
            using var fromNodes = OpenAiAdapter.Instance.CreateChatRequest(provider, Call(body), "gpt-up", "sk-test");
            using var json = Read(body);
            var call = FromDocument(body, json);
            using var fromBytes = OpenAiAdapter.Instance.CreateChatRequest(provider, call, "gpt-up", "sk-test");

            Assert.False(call.HasBodyNodes);   // the bytes path built no nodes
            var expected = WithoutNullLimits(JsonNode.Parse(BodyOf(fromNodes))!.AsObject());
            var actual = WithoutNullLimits(JsonNode.Parse(BodyOf(fromBytes))!.AsObject());
            Assert.True(JsonNode.DeepEquals(expected, actual), $"{baseUrl}\nnodes: {expected.ToJsonString()}\nbytes: {actual.ToJsonString()}");
            Assert.Equal("gpt-up", actual["model"]!.GetValue<string>());
        }
    }

    [Theory]
    [MemberData(nameof(Bodies))]
    public void The_prompt_counts_the_same_from_the_document_as_from_nodes(string body)
    {
        foreach (var tokenizer in new[] { TokenCounter.Family("gpt-4o")!.Value, TokenCounter.Family("gpt-4")!.Value, new ModelTokenizer(null, false) })
        {
            using var json = Read(body);
            Assert.Equal(tokenizer.CountPrompt((JsonObject)JsonNode.Parse(body)!), tokenizer.CountPrompt(json.Root));
        }
    }

    [Fact]
    public void A_translating_adapter_gets_nodes_parsed_from_the_bytes()
    {
        const string body = """{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16}""";
        using var json = Read(body);
        var call = FromDocument(body, json);

        Assert.Equal("hi", call.Body["messages"]![0]!["content"]!.GetValue<string>());
        Assert.True(call.HasBodyNodes);
        // Once nodes exist (an adapter may have changed them), an OpenAI route forwards the nodes.
        call.Body["user"] = "changed";
        using var request = OpenAiAdapter.Instance.CreateChatRequest(Upstream("http://compatible.test/v1"), call, "gpt-up", null);
        Assert.Equal("changed", JsonNode.Parse(BodyOf(request))!["user"]!.GetValue<string>());
    }

    [Fact]
    public void An_answered_stream_lets_the_client_body_go_and_reading_it_later_is_a_clear_error()
    {
        const string body = """{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}""";
        var json = Read(body);
        var call = FromDocument(body, json);
        _ = call.Body;   // nodes made, as a translating adapter makes them

        call.ReleaseRequest();

        Assert.Null(call.Request);
        Assert.False(call.HasBodyNodes);
        Assert.Throws<ObjectDisposedException>(() => json.Bytes);   // the pooled bytes went back
        var error = Assert.Throws<InvalidOperationException>(() => call.Body);
        Assert.Contains("released", error.Message);
        json.Dispose();   // the response's own disposal afterwards is harmless
    }

    /// <summary>A null limit is no limit: the node path forwards one the client sent, the bytes path leaves it out.</summary>
    private static JsonObject WithoutNullLimits(JsonObject body)
    {
        foreach (var name in new[] { "max_tokens", "max_completion_tokens" })
            if (body.ContainsKey(name) && body[name] is null) body.Remove(name);
        return body;
    }

    private static RequestJson Read(string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var buffer = ArrayPool<byte>.Shared.Rent(bytes.Length);
        bytes.CopyTo(buffer, 0);
        return new RequestJson(JsonDocument.Parse(buffer.AsMemory(0, bytes.Length)), buffer, bytes.Length);
    }

    private static ChatCall FromDocument(string body, RequestJson json)
    {
        var like = Call(body);
        return new ChatCall
        {
            Request = json, Model = like.Model, Stream = like.Stream, ClientWantsUsage = like.ClientWantsUsage, CompletionId = like.CompletionId,
            Created = like.Created, MaxOutputTokens = like.MaxOutputTokens, ClientSetMaxTokens = like.ClientSetMaxTokens,
            OutputBound = like.OutputBound, Choices = like.Choices, MediaTokensBound = like.MediaTokensBound,
        };
    }
}
