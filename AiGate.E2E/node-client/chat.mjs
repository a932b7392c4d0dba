// One non-streamed chat completion through AiGate with the official `openai` npm package, unchanged but for
// its base URL and key; prints the completion's text and usage (AiGate adds usage.cost, in USD) as JSON.
//
//   node chat.mjs <baseURL of the site> <api key> <model> [prompt]
//
// Exit code 0 with {"content", "usage"} on stdout; 1 with the SDK's error on stderr. Run by AiGate.E2E.
import OpenAI from "openai";

const [baseUrl, apiKey, model, prompt = "hello from node"] = process.argv.slice(2);
if (!baseUrl || !apiKey || !model) {
  console.error("usage: node chat.mjs <baseURL> <api key> <model> [prompt]");
  process.exit(2);
}

const client = new OpenAI({ baseURL: new URL("/api/v1", baseUrl).toString(), apiKey, maxRetries: 0, timeout: 30_000 });

try {
  const completion = await client.chat.completions.create({ model, messages: [{ role: "user", content: prompt }] });
  process.stdout.write(JSON.stringify({ content: completion.choices[0]?.message?.content ?? "", usage: completion.usage }) + "\n");
} catch (error) {
  console.error(error instanceof OpenAI.APIError ? `${error.status} ${error.message}` : String(error));
  process.exit(1);
}
