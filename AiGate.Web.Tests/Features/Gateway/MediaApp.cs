using AiGate.Web.Features.Models;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Features.Gateway;

/// <summary>
/// The app for the media endpoints: a fake OpenAI as provider <c>fake</c> (besides the echo provider), image models priced
/// per image at a ×1.5 margin, a free and a per-request moderation model, all routed to the fake.
/// </summary>
public sealed class MediaApp : AiGateApp
{
    public const string DallE = "test/dall-e-3";
    public const string GptImage = "test/gpt-image-1";
    public const string FreeModeration = "test/moderation";
    public const string PaidModeration = "test/moderation-paid";
    public const string Tts = "test/tts-1";
    public const string Whisper = "test/whisper-1";

    public FakeOpenAi OpenAi { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        OpenAi = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
        await Database.ExecuteAsync($$"""
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, margin_basis_points, aliases, modalities, enabled, created_at,
                                image_prices, micros_per_request) values
              ('{{DallE}}', 'DALL-E test', 'image', 'openai', 4000, 1, 15000, array[]::text[], array['image'], true, now(),
               '[{"size":"1024x1024","quality":"standard","micros":40000},{"size":"1024x1024","quality":"hd","micros":80000}]', null),
              ('{{GptImage}}', 'GPT Image test', 'image', 'openai', 32000, 1, 15000, array[]::text[], array['image'], true, now(),
               '[{"size":"1024x1024","quality":"low","micros":11000},{"size":"1024x1024","quality":"high","micros":167000}]', null),
              ('{{FreeModeration}}', 'Moderation test', 'moderation', 'openai', 32768, 1, 15000, array[]::text[], array['text'], true, now(), null, null),
              ('{{PaidModeration}}', 'Paid moderation test', 'moderation', 'openai', 32768, 1, 15000, array[]::text[], array['text'], true, now(), null, 1000);
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, margin_basis_points, aliases, modalities, enabled, created_at, micros_per_mchar)
              values ('{{Tts}}', 'TTS test', 'speech', 'openai', 4096, 1, 15000, array[]::text[], array['audio'], true, now(), 15000000);
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, margin_basis_points, aliases, modalities, enabled, created_at, micros_per_minute)
              values ('{{Whisper}}', 'Whisper test', 'transcription', 'openai', 1, 1, 15000, array[]::text[], array['audio'], true, now(), 6000);
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values
              ('{{DallE}}', 'fake', 'dall-e-3', 0, 1, true), ('{{GptImage}}', 'fake', 'gpt-image-1', 0, 1, true),
              ('{{FreeModeration}}', 'fake', 'omni-moderation-latest', 0, 1, true), ('{{PaidModeration}}', 'fake', 'omni-moderation-latest', 0, 1, true),
              ('{{Tts}}', 'fake', 'tts-1', 0, 1, true), ('{{Whisper}}', 'fake', 'whisper-1', 0, 1, true);
            """);
        await Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Providers:fake:Kind"] = "openai", ["Providers:fake:BaseUrl"] = OpenAi.BaseUrl.ToString(), ["Providers:fake:ApiKey"] = "sk-fake",
    };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await OpenAi.DisposeAsync();
    }

    /// <summary>Once every usage record is written: the balance is as expected and equals the ledger's sum.</summary>
    /// <summary>The official OpenAI SDK pointed at this app's /api/v1 with <paramref name="key"/>, no retries.</summary>
    public OpenAI.OpenAIClient Sdk(string key) => new(new System.ClientModel.ApiKeyCredential(key), new OpenAI.OpenAIClientOptions
    {
        Endpoint = new Uri(Server.BaseAddress, "/api/v1"),
        Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(CreateClient()),
        RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
    });

    /// <summary>
    /// Waits (10 s at most) until the user has a usage row: a call whose client left settles when the app notices, which
    /// on a loaded machine can be after the test has moved on, so the writer's queue may still be empty.
    /// </summary>
    public async Task WaitForUsageRowAsync(Guid userId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await Database.ScalarAsync<long>($"select count(*) from usage_events where user_id = '{userId}'") == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
    }

    public async Task AssertLedgerMatchesBalanceAsync(Guid userId, long expectedBalance)
    {
        await WaitForUsageAsync();
        var balance = await Database.ScalarAsync<long>($"select balance_micros from credit_accounts where user_id = '{userId}'");
        var ledger = await Database.ScalarAsync<long>($"select coalesce(sum(amount_micros), 0)::bigint from ledger_entries where user_id = '{userId}'");
        Assert.Equal(expectedBalance, balance);
        Assert.Equal(balance, ledger);
    }

    /// <summary>The user's usage rows as (model, cost, status), once written.</summary>
    public async Task<(string Model, long Cost, int Status)> UsageRowAsync(Guid userId)
    {
        await WaitForUsageAsync();
        var row = await Database.ScalarAsync<string>($"select model_id || '|' || cost_micros || '|' || status from usage_events where user_id = '{userId}' order by id desc limit 1");
        var parts = row!.Split('|');
        return (parts[0], long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture));
    }
}
