using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using Microsoft.ML.Tokenizers;

namespace AiGate.Web.Tests.Features.Models;

/// <summary>Which tokenizer counts which model, and the prompt count a reservation is built on.</summary>
public sealed class TokenCounterTests
{
    private static ResolvedModel Model(string id, string upstream = "x") =>
        new(id, id, "chat", "vendor", 1000, 100, new ModelPricing(1, 1, 1, 10_000), [new ModelRoute { ModelId = id, Provider = "p", UpstreamModel = upstream }], DateTimeOffset.UnixEpoch);

    [Theory]
    [InlineData("openai/gpt-4o-mini", "o200k_base", true)]
    [InlineData("openai/gpt-4.1", "o200k_base", true)]
    [InlineData("openai/o3-mini", "o200k_base", true)]
    [InlineData("openai/gpt-5", "o200k_base", true)]
    [InlineData("openai/gpt-4-turbo", "cl100k_base", true)]
    [InlineData("openai/gpt-3.5-turbo", "cl100k_base", true)]
    [InlineData("anthropic/claude-sonnet-4-5", "cl100k_base", false)]
    [InlineData("google/gemini-2.5-flash", "cl100k_base", false)]
    public void Each_model_family_gets_its_tokenizer(string id, string encoding, bool exact)
    {
        var counter = TokenCounter.For(Model(id));

        Assert.Equal(exact, counter.Exact);
        const string text = "Счёт: 1,048,576 токенов — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and code { x += 1; }";
        Assert.Equal(TiktokenTokenizer.CreateForEncoding(encoding).CountTokens(text), counter.Count(text));
    }

    [Fact]
    public void A_catalogue_name_of_its_own_is_recognised_by_its_upstream_model()
    {
        Assert.True(TokenCounter.For(Model("acme/house-model", upstream: "gpt-4o-2024-08-06")).Exact);
        Assert.False(TokenCounter.For(Model("acme/house-model", upstream: "llama-3.3-70b")).Exact);
    }

    [Fact]
    public void Without_a_tokenizer_bytes_over_four_stand_in()
    {
        var none = new ModelTokenizer(null, Exact: false);

        Assert.Equal(3, none.Count("ten bytes!"));   // 10 bytes → 3 (rounded up)
        Assert.Equal(0, none.Count(""));
        Assert.Equal(200, none.PromptUpperBound(100));   // no bound without a tokenizer: doubled
    }

    [Fact]
    public void The_prompt_count_covers_every_text_the_provider_reads_and_the_bound_adds_a_margin()
    {
        var counter = TokenCounter.For(Model("openai/gpt-4o"));
        var body = (JsonObject)JsonNode.Parse("""
            {"model":"openai/gpt-4o","messages":[
              {"role":"system","content":"Be brief."},
              {"role":"user","content":[{"type":"text","text":"What is in this picture?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"a cat"}],
             "tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]}
            """)!;
        var o200k = TiktokenTokenizer.CreateForEncoding("o200k_base");
        long Count(string s) => o200k.CountTokens(s);
        var expected = 3 + (4 + Count("Be brief.")) + (4 + 1 + Count("What is in this picture?"))
            + (4 + 4 + Count("lookup") + Count("{\"q\":\"cat\"}")) + (4 + Count("call_1") + Count("a cat"))
            + Count(body["tools"]!.ToJsonString());

        var counted = counter.CountPrompt(body);

        Assert.Equal(expected, counted);   // the image is reserved apart, not as base64 text
        Assert.Equal(counted + counted / 10 + 1, counter.PromptUpperBound(counted));
        Assert.Equal(counted + counted / 2 + 1, TokenCounter.For(Model("anthropic/claude-haiku-4-5")).PromptUpperBound(counted));
    }
}
