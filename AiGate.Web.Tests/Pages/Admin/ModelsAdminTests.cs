using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using AiGate.Web.Features.Models;
using AiGate.Web.Infrastructure.Cli;
using AiGate.Web.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiGate.Web.Tests.Pages.Admin;

/// <summary>The app with an OpenAI-compatible fake named "fake" beside the echo provider, and a second instance on the same database.</summary>
public sealed class ModelsAdminApp : AccountsApp
{
    public FakeOpenAi Fake { get; private set; } = null!;
    private WebApplicationFactory<Program>? _other;

    public override async Task InitializeAsync()
    {
        Fake = await FakeOpenAi.StartAsync();
        await base.InitializeAsync();
    }

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>(base.Settings)
    {
        ["Providers:fake:Kind"] = "openai", ["Providers:fake:BaseUrl"] = Fake.BaseUrl.ToString(), ["Providers:fake:ApiKey"] = "sk-fake-provider-key",
    };

    /// <summary>A second instance of the app on the same database, with its own catalogue and listener.</summary>
    public WebApplicationFactory<Program> Other => _other ??= SecondInstance.WithEcho(Database.ConnectionString, [.. SecondInstance.NoPlanLimits, .. Settings.Select(s => (s.Key, s.Value))]);
}

/// <summary>Issue 13, models and prices, routes and providers: each action's effect and its audit row, across instances.</summary>
public sealed class ModelsAdminTests(ModelsAdminApp app) : IClassFixture<ModelsAdminApp>
{
    private const string Password = "a long enough passphrase";

    [Fact]
    public async Task An_admin_creates_a_model_with_prices_and_a_route_and_a_user_is_charged_the_new_price()
    {
        app.Fake.Reset();
        using var admin = await AdminAsync();
        var id = $"test/created-{Guid.NewGuid():N}"[..30];

        var created = await admin.SubmitAsync("/Admin/ModelEdit", Form(id, input: "3", output: "15", margin: "1.5"));
        Assert.Equal(HttpStatusCode.Redirect, created.StatusCode);
        Assert.Equal(3_000_000, await app.Database.ScalarAsync<long>($"select input_micros_per_mtok from models where id = '{id}'"));
        Assert.Equal(15_000_000, await app.Database.ScalarAsync<long>($"select output_micros_per_mtok from models where id = '{id}'"));
        Assert.Equal(15_000, await app.Database.ScalarAsync<int>($"select margin_basis_points from models where id = '{id}'"));
        Assert.True(await app.Database.ScalarAsync<bool>($"select cached_input_micros_per_mtok is null from models where id = '{id}'"));
        var audit = await AuditAsync("model.create", $"model:{id}");
        Assert.StartsWith("admin-", audit.Actor, StringComparison.Ordinal);
        Assert.Null(audit.Before);
        Assert.Contains("\"inputMicrosPerMTok\":3000000", audit.After, StringComparison.Ordinal);
        Assert.NotNull(audit.RequestId);

        // Not servable yet: no route. The page says so.
        var edit = await admin.TextAsync(EditUrl(id));
        Assert.Contains("data-testid=\"no-routes\"", edit, StringComparison.Ordinal);
        Assert.Contains("Users pay $4.50 input, $22.50 output", edit, StringComparison.Ordinal);

        var routed = await admin.SubmitAsync(EditUrl(id), new() { ["route.Provider"] = "fake", ["route.UpstreamModel"] = "gpt-test", ["route.Priority"] = "0",
            ["route.Weight"] = "1", ["route.Enabled"] = "true" }, EditUrl(id) + "&handler=AddRoute");
        Assert.Equal(HttpStatusCode.Redirect, routed.StatusCode);
        var routeAudit = await AuditAsync("route.create", $"route:{id}/fake/gpt-test");
        Assert.Contains("\"upstreamModel\":\"gpt-test\"", routeAudit.After, StringComparison.Ordinal);

        var (client, _, userId) = await app.CreateApiClientAsync();
        var listed = await PollAsync(() => client.GetFromJsonAsync<JsonObject>("/api/v1/models/" + Uri.EscapeDataString(id)), TimeSpan.FromSeconds(5), _ => true);
        Assert.Equal("4.5", listed!["pricing"]!["prompt_per_million"]!.GetValue<string>());
        Assert.Equal("22.5", listed["pricing"]!["completion_per_million"]!.GetValue<string>());

        var answer = await client.PostAsJsonAsync("/api/v1/chat/completions", new { model = id, messages = new[] { new { role = "user", content = "hi" } } });
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("fake", answer.Headers.GetValues("X-AiGate-Provider").Single());
        Assert.Contains("\"model\":\"gpt-test\"", app.Fake.Requests.Last().Body, StringComparison.Ordinal);
        await app.WaitForUsageAsync();
        await AssertChargedAsync(userId, new ModelPricing(3_000_000, 15_000_000, 3_000_000, 15_000));

        var list = await admin.TextAsync("/Admin/Models?q=" + Uri.EscapeDataString(id));
        Assert.Contains($"data-model=\"{id}\"", list, StringComparison.Ordinal);
        Assert.Contains("$3.00 / $15.00 / $3.00", list, StringComparison.Ordinal);
        Assert.Contains("$4.50 / $22.50 / $4.50", list, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_list_filters_by_search_provider_kind_state_and_price_and_flags_unpriced_models_loudly()
    {
        using var admin = await AdminAsync();
        var tag = Guid.NewGuid().ToString("N")[..10];
        var priced = $"test/list-priced-{tag}";
        var unpriced = $"test/list-unpriced-{tag}";
        await InsertModelAsync(priced, "fake", "gpt-list");
        await app.Database.ExecuteAsync($"""
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                                cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
            values ('{unpriced}', 'Unpriced', 'embedding', 'test', 8192, 1, null, null, null, null, array[]::text[], array['text'], false, now());
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values ('{unpriced}', 'echo', 'echo-embed', 0, 1, true);
            """);

        async Task<string[]> Listed(string query)
        {
            var html = await admin.TextAsync("/Admin/Models?q=" + tag + query);
            return [.. new[] { priced, unpriced }.Where(id => html.Contains($"data-model=\"{id}\"", StringComparison.Ordinal))];
        }
        var all = await admin.TextAsync("/Admin/Models?q=" + tag);
        Assert.Contains("data-testid=\"unpriced-warning\"", all, StringComparison.Ordinal);
        Assert.Matches($@"data-model=""{unpriced}""[\s\S]*?UNPRICED — not served", all);
        Assert.Equal([priced, unpriced], await Listed(""));
        Assert.Equal([unpriced], await Listed("&unpriced=true"));
        Assert.Equal([priced], await Listed("&provider=fake"));
        Assert.Equal([unpriced], await Listed("&kind=embedding"));
        Assert.Equal([priced], await Listed("&kind=chat&enabled=yes"));
        Assert.Equal([unpriced], await Listed("&enabled=no"));
        var edit = await admin.TextAsync(EditUrl(unpriced));
        Assert.Contains("UNPRICED: this model is not served", edit, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_message_per_field_and_changes_nothing()
    {
        using var admin = await AdminAsync();
        var id = $"test/bad-{Guid.NewGuid():N}"[..26];
        var auditBefore = await app.Database.ScalarAsync<long>("select count(*) from audit_log");

        var form = Form(id, input: "abc", output: "1.1234567", margin: "0.5");
        form["Input.MaxOutputTokens"] = "100000";
        var refused = await admin.SubmitAsync("/Admin/ModelEdit", form);
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        var html = System.Net.WebUtility.HtmlDecode(await refused.Content.ReadAsStringAsync());
        Assert.Contains("Input price must be an amount in USD per million tokens", html, StringComparison.Ordinal);
        Assert.Contains("Output price must be an amount in USD per million tokens", html, StringComparison.Ordinal);
        Assert.Contains("Margin must be a multiplier between 1 and 100", html, StringComparison.Ordinal);
        Assert.Contains("Max output cannot exceed the context length.", html, StringComparison.Ordinal);

        var half = await admin.SubmitAsync("/Admin/ModelEdit", Form(id, input: "1", output: ""));
        Assert.Contains("Set both the input and the output price, or neither", System.Net.WebUtility.HtmlDecode(await half.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        var badId = await admin.SubmitAsync("/Admin/ModelEdit", Form("no spaces allowed", input: "1", output: "2"));
        Assert.Contains("must look like provider/model", System.Net.WebUtility.HtmlDecode(await badId.Content.ReadAsStringAsync()), StringComparison.Ordinal);

        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from models where id = '{id}'"));
        await app.Database.InsertMeteredModelAsync(id, "Taken", "echo", "echo-1");
        var taken = await admin.SubmitAsync("/Admin/ModelEdit", Form(id, input: "1", output: "2"));
        Assert.Contains($"A model with id &#x27;{id}&#x27; already exists.", await taken.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(auditBefore, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync(EditUrl("test/no-such-model"))).StatusCode);
    }

    [Fact]
    public async Task A_price_change_reaches_models_and_charging_on_another_instance_within_five_seconds()
    {
        using var admin = await AdminAsync();
        var id = $"test/priced-{Guid.NewGuid():N}"[..28];
        await InsertModelAsync(id, "echo", "echo-1");
        var (_, key, userId) = await app.CreateApiClientAsync();
        var onB = Client(app.Other, key);
        var before = await PollAsync(() => onB.GetFromJsonAsync<JsonObject>("/api/v1/models/" + Uri.EscapeDataString(id)), TimeSpan.FromSeconds(5), _ => true);
        Assert.Equal("1", before!["pricing"]!["prompt_per_million"]!.GetValue<string>());

        var form = Form(id, input: "2", output: "4", margin: "1");
        form.Remove("Input.Id");
        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(EditUrl(id), form)).StatusCode);
        var changedAt = Stopwatch.StartNew();
        var after = await PollAsync(() => onB.GetFromJsonAsync<JsonObject>("/api/v1/models/" + Uri.EscapeDataString(id)), TimeSpan.FromSeconds(10),
            m => m!["pricing"]!["prompt_per_million"]!.GetValue<string>() == "2");
        Assert.True(changedAt.Elapsed < TimeSpan.FromSeconds(5), $"instance B showed the old price for {changedAt.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal("4", after!["pricing"]!["completion_per_million"]!.GetValue<string>());

        var audit = await AuditAsync("model.update", $"model:{id}");
        Assert.Contains("\"inputMicrosPerMTok\":1000000", audit.Before, StringComparison.Ordinal);
        Assert.Contains("\"inputMicrosPerMTok\":2000000", audit.After, StringComparison.Ordinal);

        var charged = await onB.PostAsJsonAsync("/api/v1/chat/completions", new { model = id, messages = new[] { new { role = "user", content = "price me" } } });
        Assert.Equal(HttpStatusCode.OK, charged.StatusCode);
        await WaitForUsageAsync(app.Other);
        await AssertChargedAsync(userId, new ModelPricing(2_000_000, 4_000_000, 1_000_000, 10_000));
    }

    [Fact]
    public async Task A_stream_admitted_before_a_price_change_settles_at_the_old_price()
    {
        app.Fake.Reset();
        app.Fake.Mode = FakeOpenAi.Behaviour.SlowStream;
        app.Fake.Reply = "one two three four five six seven eight nine ten";
        try
        {
            using var admin = await AdminAsync();
            var id = $"test/inflight-{Guid.NewGuid():N}"[..30];
            await InsertModelAsync(id, "fake", "gpt-slow");
            var (client, _, userId) = await app.CreateApiClientAsync();

            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = id, stream = true, messages = new[] { new { role = "user", content = "count" } } }),
            };
            using var stream = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
            using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());   // admitted and streaming
            var streaming = Stopwatch.StartNew();

            var form = Form(id, input: "50", output: "100", margin: "2");
            form.Remove("Input.Id");
            Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync(EditUrl(id), form)).StatusCode);
            var catalog = app.Services.GetRequiredService<ModelCatalog>();
            await PollAsync(async () => await catalog.FindAsync(id, CancellationToken.None), TimeSpan.FromSeconds(5), m => m!.Pricing!.Value.InputPerMTok == 50_000_000);
            // The fake sends a word every 200 ms: ten words take 2 s, so the new price was in place while the stream ran.
            Assert.True(streaming.Elapsed < TimeSpan.FromSeconds(1.5), $"the price change took {streaming.Elapsed.TotalMilliseconds:0} ms");

            var rest = await reader.ReadToEndAsync();
            Assert.Contains("data: [DONE]", rest, StringComparison.Ordinal);
            await app.WaitForUsageAsync();
            // The stream was admitted at 1 µ$ a token ×1: it settles at that price, not at the new one.
            await AssertChargedAsync(userId, new ModelPricing(1_000_000, 1_000_000, 1_000_000, 10_000));

            app.Fake.Mode = FakeOpenAi.Behaviour.Ok;
            var (later, _, laterUser) = await app.CreateApiClientAsync();
            Assert.Equal(HttpStatusCode.OK, (await later.PostAsJsonAsync("/api/v1/chat/completions", new { model = id, messages = new[] { new { role = "user", content = "count" } } })).StatusCode);
            await app.WaitForUsageAsync();
            await AssertChargedAsync(laterUser, new ModelPricing(50_000_000, 100_000_000, 1_000_000, 20_000));
        }
        finally
        {
            app.Fake.Reset();
            app.Fake.Reply = "Hello from the fake upstream";
        }
    }

    [Fact]
    public async Task Import_shows_the_diff_first_then_applies_it_in_one_transaction_and_a_bad_row_changes_nothing()
    {
        using var admin = await AdminAsync();
        var existing = $"test/imp-{Guid.NewGuid():N}"[..26];
        var added = $"test/new-{Guid.NewGuid():N}"[..26];
        await InsertModelAsync(existing, "echo", "echo-1");

        var export = await admin.GetAsync("/Admin/Models?handler=Export");
        Assert.Equal("application/json", export.Content.Headers.ContentType!.MediaType);
        var file = JsonNode.Parse(await export.Content.ReadAsStringAsync())!.AsObject();
        var row = file["models"]!.AsArray().Single(m => m!["id"]!.GetValue<string>() == existing)!.AsObject();
        Assert.Equal(1m, row["input_usd_per_mtok"]!.GetValue<decimal>());
        Assert.Equal("echo", row["routes"]![0]!["provider"]!.GetValue<string>());

        row["input_usd_per_mtok"] = 2.5m;
        var newRow = JsonNode.Parse(row.ToJsonString())!.AsObject();
        newRow["id"] = added;
        newRow["name"] = "Added by import";
        file["models"] = new JsonArray(row.DeepClone(), newRow);
        var json = file.ToJsonString();
        var auditBefore = await app.Database.ScalarAsync<long>("select count(*) from audit_log");

        var preview = await admin.SubmitAsync("/Admin/Models", new() { ["json"] = json }, "/Admin/Models?handler=Preview");
        var diff = System.Net.WebUtility.HtmlDecode(await preview.Content.ReadAsStringAsync());
        Assert.Contains($"<td>update</td><td>model:{existing}</td><td>input $1.00 → $2.50</td>", diff, StringComparison.Ordinal);
        Assert.Contains($"<td>create</td><td>model:{added}</td>", diff, StringComparison.Ordinal);
        Assert.Contains($"<td>create</td><td>route:{added}/echo/echo-1</td>", diff, StringComparison.Ordinal);
        Assert.Equal(1_000_000, await app.Database.ScalarAsync<long>($"select input_micros_per_mtok from models where id = '{existing}'"));
        Assert.Equal(auditBefore, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));

        // A bad row (a negative price) next to a good one: refused before anything is written.
        var bad = JsonNode.Parse(json)!.AsObject();
        bad["models"]![1]!["output_usd_per_mtok"] = -1;
        var refused = await admin.SubmitAsync("/Admin/Models", new() { ["json"] = bad.ToJsonString() }, "/Admin/Models?handler=Import");
        Assert.Contains("output_usd_per_mtok must be between 0 and 100000", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // A row that only the database step can refuse (its alias is the other model's id), after a good row was written: rolled back.
        var clash = JsonNode.Parse(json)!.AsObject();
        clash["models"]![1]!["aliases"] = new JsonArray(existing);
        var rolledBack = await admin.SubmitAsync("/Admin/Models", new() { ["json"] = clash.ToJsonString() }, "/Admin/Models?handler=Import");
        Assert.Contains($"&#x27;{existing}&#x27; already names model {existing}.", await rolledBack.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1_000_000, await app.Database.ScalarAsync<long>($"select input_micros_per_mtok from models where id = '{existing}'"));
        Assert.Equal(0, await app.Database.ScalarAsync<long>($"select count(*) from models where id = '{added}'"));
        Assert.Equal(auditBefore, await app.Database.ScalarAsync<long>("select count(*) from audit_log"));

        var applied = await admin.SubmitAsync("/Admin/Models", new() { ["json"] = json }, "/Admin/Models?handler=Import");
        Assert.Equal(HttpStatusCode.Redirect, applied.StatusCode);
        Assert.Equal(2_500_000, await app.Database.ScalarAsync<long>($"select input_micros_per_mtok from models where id = '{existing}'"));
        Assert.Equal(1, await app.Database.ScalarAsync<long>($"select count(*) from model_routes where model_id = '{added}' and provider = 'echo'"));
        Assert.Equal("import", (await AuditAsync("model.update", $"model:{existing}")).Detail);
        Assert.Equal("import", (await AuditAsync("model.create", $"model:{added}")).Detail);
        await AuditAsync("route.create", $"route:{added}/echo/echo-1");
        Assert.Contains("Imported: 2 created, 1 updated", await admin.TextAsync("/Admin/Models"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_verbs_export_the_catalogue_and_import_only_with_apply_audited_as_cli()
    {
        var id = $"test/cli-{Guid.NewGuid():N}"[..26];
        await InsertModelAsync(id, "echo", "echo-1");
        var (code, exported) = await RunAsync("export-models");
        Assert.Equal(0, code);
        var file = JsonNode.Parse(exported)!.AsObject();
        var row = file["models"]!.AsArray().Single(m => m!["id"]!.GetValue<string>() == id)!;
        row["output_usd_per_mtok"] = 3;
        file["models"] = new JsonArray(row.DeepClone());
        var path = Path.Combine(Path.GetTempPath(), $"aigate-models-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, file.ToJsonString());
        try
        {
            var (dryCode, dry) = await RunAsync("import-models", "--file", path);
            Assert.Equal(0, dryCode);
            Assert.Contains($"update model:{id}: output $1.00 → $3.00", dry, StringComparison.Ordinal);
            Assert.Contains("nothing applied", dry, StringComparison.Ordinal);
            Assert.Equal(1_000_000, await app.Database.ScalarAsync<long>($"select output_micros_per_mtok from models where id = '{id}'"));

            var (applyCode, applied) = await RunAsync("import-models", "--file", path, "--apply");
            Assert.Equal(0, applyCode);
            Assert.Contains("applied 1 change(s)", applied, StringComparison.Ordinal);
            Assert.Equal(3_000_000, await app.Database.ScalarAsync<long>($"select output_micros_per_mtok from models where id = '{id}'"));
            Assert.Equal("cli", (await AuditAsync("model.update", $"model:{id}")).Actor);

            await File.WriteAllTextAsync(path, "{\"models\": [{\"id\": \"" + id + "\", \"nonsense\": 1}]}");
            var (badCode, bad) = await RunAsync("import-models", "--file", path, "--apply");
            Assert.Equal(1, badCode);
            Assert.Contains("nothing was changed", bad, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_disabled_provider_or_route_is_skipped_by_every_instance_within_seconds_and_audited()
    {
        app.Fake.Reset();
        using var admin = await AdminAsync();
        var id = $"test/failover-{Guid.NewGuid():N}"[..30];
        await app.Database.ExecuteAsync($"""
            insert into models (id, name, kind, owned_by, context_length, max_output_tokens, input_micros_per_mtok, output_micros_per_mtok,
                                cached_input_micros_per_mtok, margin_basis_points, aliases, modalities, enabled, created_at)
            values ('{id}', 'Failover', 'chat', 'test', 8192, 1024, 1000000, 1000000, 1000000, 10000, array[]::text[], array['text'], true, now());
            insert into model_routes (model_id, provider, upstream_model, priority, weight, enabled) values ('{id}', 'fake', 'gpt-a', 0, 1, true), ('{id}', 'echo', 'echo-1', 1, 1, true);
            select pg_notify('aigate_cache', 'catalog');
            """);
        var (_, key, _) = await app.CreateApiClientAsync();
        var onA = Client(app, key);
        var onB = Client(app.Other, key);
        var chat = new { model = id, messages = new[] { new { role = "user", content = "who serves?" } } };
        async Task<string> ServedBy(HttpClient c) => (await c.PostAsJsonAsync("/api/v1/chat/completions", chat)).Headers.TryGetValues("X-AiGate-Provider", out var v) ? v.Single() : "none";
        Assert.Equal("fake", await PollAsync(() => ServedBy(onB), TimeSpan.FromSeconds(5), p => p == "fake"));

        var disabled = await admin.SubmitAsync("/Admin/Providers", new() { ["name"] = "fake", ["enable"] = "false", ["reason"] = "maintenance" }, "/Admin/Providers?handler=Toggle");
        Assert.Equal(HttpStatusCode.Redirect, disabled.StatusCode);
        var at = Stopwatch.StartNew();
        Assert.Equal("echo", await PollAsync(() => ServedBy(onB), TimeSpan.FromSeconds(10), p => p == "echo"));
        Assert.True(at.Elapsed < TimeSpan.FromSeconds(5), $"instance B used the disabled provider for {at.Elapsed.TotalMilliseconds:0} ms");
        var fakeCalls = app.Fake.ChatRequests;
        Assert.Equal("echo", await ServedBy(onA));
        Assert.Equal("echo", await ServedBy(onB));
        Assert.Equal(fakeCalls, app.Fake.ChatRequests);
        var audit = await AuditAsync("provider.disable", "provider:fake");
        Assert.Equal("maintenance", audit.Reason);
        Assert.Equal("{\"enabled\":true}", audit.Before);
        var page = await admin.TextAsync("/Admin/Providers");
        Assert.Contains("Disabled", page, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-fake-provider-key", page, StringComparison.Ordinal);
        Assert.Contains(app.Fake.BaseUrl.GetComponents(UriComponents.SchemeAndServer, UriFormat.UriEscaped), page, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.Redirect, (await admin.SubmitAsync("/Admin/Providers", new() { ["name"] = "fake", ["enable"] = "true" }, "/Admin/Providers?handler=Toggle")).StatusCode);
        await AuditAsync("provider.enable", "provider:fake");
        Assert.Equal("fake", await PollAsync(() => ServedBy(onB), TimeSpan.FromSeconds(5), p => p == "fake"));

        // The fake route disabled from the model page: the router skips it on every instance.
        var routeId = await app.Database.ScalarAsync<long>($"select id from model_routes where model_id = '{id}' and provider = 'fake'");
        var saved = await admin.SubmitAsync(EditUrl(id), new() { ["routeId"] = routeId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["route.Provider"] = "fake", ["route.UpstreamModel"] = "gpt-a", ["route.Priority"] = "0", ["route.Weight"] = "1", ["route.Enabled"] = "false" },
            EditUrl(id) + "&handler=SaveRoute");
        Assert.Equal(HttpStatusCode.Redirect, saved.StatusCode);
        Assert.Equal("echo", await PollAsync(() => ServedBy(onB), TimeSpan.FromSeconds(5), p => p == "echo"));
        var routeAudit = await AuditAsync("route.update", $"route:{id}/fake/gpt-a");
        Assert.Contains("\"enabled\":true", routeAudit.Before, StringComparison.Ordinal);
        Assert.Contains("\"enabled\":false", routeAudit.After, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_route_test_sends_one_token_through_that_route_shows_latency_and_answer_and_charges_no_one()
    {
        app.Fake.Reset();
        using var admin = await AdminAsync();
        var id = $"test/probe-{Guid.NewGuid():N}"[..28];
        await InsertModelAsync(id, "fake", "gpt-probe");
        var routeId = await app.Database.ScalarAsync<long>($"select id from model_routes where model_id = '{id}'");
        var ledger = await app.Database.ScalarAsync<long>("select count(*) from ledger_entries");
        var usage = await app.Database.ScalarAsync<long>("select count(*) from usage_events");

        var tested = await admin.SubmitAsync(EditUrl(id), new() { ["routeId"] = routeId.ToString(System.Globalization.CultureInfo.InvariantCulture) }, EditUrl(id) + "&handler=TestRoute");
        Assert.Equal(HttpStatusCode.Redirect, tested.StatusCode);
        var page = System.Net.WebUtility.HtmlDecode(await admin.TextAsync(EditUrl(id)));
        Assert.Matches(@"fake → gpt-probe: OK in \d+ ms\. Answer: Hello from the fake upstream", page);
        var sent = JsonNode.Parse(app.Fake.Requests.Single(r => r.PathAndQuery == "/v1/chat/completions").Body)!;
        Assert.Equal("gpt-probe", sent["model"]!.GetValue<string>());
        Assert.Equal(1, (sent["max_completion_tokens"] ?? sent["max_tokens"])!.GetValue<int>());
        Assert.Equal("Bearer sk-fake-provider-key", app.Fake.Requests.Last().Headers["Authorization"]);

        app.Fake.Mode = FakeOpenAi.Behaviour.Fail400;
        await admin.SubmitAsync(EditUrl(id), new() { ["routeId"] = routeId.ToString(System.Globalization.CultureInfo.InvariantCulture) }, EditUrl(id) + "&handler=TestRoute");
        Assert.Matches(@"fake → gpt-probe: failed in \d+ ms\. Failed after 1 attempt\(s\): the provider refused the request \(400\)",
            System.Net.WebUtility.HtmlDecode(await admin.TextAsync(EditUrl(id))));
        app.Fake.Reset();

        await app.WaitForUsageAsync();
        Assert.Equal(ledger, await app.Database.ScalarAsync<long>("select count(*) from ledger_entries"));
        Assert.Equal(usage, await app.Database.ScalarAsync<long>("select count(*) from usage_events"));
    }

    private static Dictionary<string, string> Form(string id, string input, string output, string margin = "") => new()
    {
        ["Input.Id"] = id, ["Input.Name"] = "Test model", ["Input.Kind"] = "chat", ["Input.OwnedBy"] = "test", ["Input.ContextLength"] = "8192",
        ["Input.MaxOutputTokens"] = "1024", ["Input.Aliases"] = "", ["Input.InputPrice"] = input, ["Input.OutputPrice"] = output, ["Input.CachedPrice"] = "",
        ["Input.Margin"] = margin, ["Input.Enabled"] = "true",
    };

    /// <summary>A model at 1 µ$ a token (margin ×1) with one route, announced to every instance as an admin change would be.</summary>
    private async Task InsertModelAsync(string id, string provider, string upstreamModel)
    {
        await app.Database.InsertMeteredModelAsync(id, "Model " + id, provider, upstreamModel);
        await app.Database.ExecuteAsync("select pg_notify('aigate_cache', 'catalog')");
        await app.Services.GetRequiredService<ModelCatalog>().ReloadAsync(CancellationToken.None);
    }

    private static string EditUrl(string id) => "/Admin/ModelEdit?id=" + Uri.EscapeDataString(id);

    private async Task<WebSession> AdminAsync()
    {
        var email = $"admin-{Guid.NewGuid():N}@example.test";
        await app.CreateUserAsync(email, Password, admin: true);
        var session = app.NewSession();
        Assert.Equal(HttpStatusCode.Redirect, (await session.LogInAsync(email, Password)).StatusCode);
        return session;
    }

    private static HttpClient Client(WebApplicationFactory<Program> factory, string key)
    {
        var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>The user's one usage row was charged exactly what <paramref name="pricing"/> makes of its tokens.</summary>
    private async Task AssertChargedAsync(Guid userId, ModelPricing pricing)
    {
        var where = $"from usage_events where user_id = '{userId}'";
        var prompt = await app.Database.ScalarAsync<long>($"select prompt_tokens {where}");
        var completion = await app.Database.ScalarAsync<long>($"select completion_tokens {where}");
        var cached = await app.Database.ScalarAsync<long>($"select cached_tokens {where}");
        var cost = await app.Database.ScalarAsync<long>($"select cost_micros {where}");
        Assert.True(prompt + completion > 0);
        Assert.Equal(pricing.CostMicros(new TokenUsage(prompt, completion, cached)), cost);
    }

    private sealed record AuditRow(string Actor, string? Before, string? After, string? Reason, string? Detail, string? RequestId);

    private async Task<AuditRow> AuditAsync(string action, string target)
    {
        var where = $"from audit_log where action = '{action}' and target = '{target.Replace("'", "''", StringComparison.Ordinal)}' order by id desc limit 1";
        Assert.True(await app.Database.ScalarAsync<long>($"select count(*) from (select 1 {where}) a") == 1, $"no {action} audit row for {target}");
        return new AuditRow((await app.Database.ScalarAsync<string>($"select actor {where}"))!, await app.Database.ScalarAsync<string>($"select before_value {where}"),
            await app.Database.ScalarAsync<string>($"select after_value {where}"), await app.Database.ScalarAsync<string>($"select reason {where}"),
            await app.Database.ScalarAsync<string>($"select detail {where}"), await app.Database.ScalarAsync<string>($"select request_id {where}"));
    }

    private static async Task WaitForUsageAsync(WebApplicationFactory<Program> factory)
    {
        var writer = factory.Services.GetRequiredService<AiGate.Web.Features.Credits.UsageWriter>();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (writer.Pending > 0 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(0, writer.Pending);
    }

    /// <summary>Calls <paramref name="read"/> until <paramref name="done"/> holds (a failing call counts as not yet), or fails after <paramref name="limit"/>.</summary>
    private static async Task<T> PollAsync<T>(Func<Task<T>> read, TimeSpan limit, Func<T, bool> done)
    {
        var watch = Stopwatch.StartNew();
        Exception? last = null;
        while (watch.Elapsed < limit)
        {
            try
            {
                var value = await read();
                if (done(value)) return value;
            }
            catch (HttpRequestException ex)
            {
                last = ex;
            }
            await Task.Delay(25);
        }
        throw new TimeoutException($"not within {limit.TotalSeconds} s", last);
    }

    private async Task<(int Code, string Out)> RunAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var code = await CommandLine.RunAsync(app.Services, args, stdout, TextWriter.Null, CancellationToken.None);
        return (code, stdout.ToString());
    }
}
