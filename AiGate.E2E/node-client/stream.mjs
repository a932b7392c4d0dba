// Streams one chat completion through AiGate with the official `openai` npm package, unchanged but
// for its base URL and key, and prints the streamed text (the echo model answers "Echo: <prompt>").
//
//   node stream.mjs <baseURL of the site> <api key> [prompt]
//
// Exit code 0 with the text on stdout; 1 with the SDK's error on stderr. Run by AiGate.E2E.
import OpenAI from "openai";

const [baseUrl, apiKey, prompt = "hello from node"] = process.argv.slice(2);
if (!baseUrl || !apiKey) {
  console.error("usage: node stream.mjs <baseURL> <api key> [prompt]");
  process.exit(2);
}

const client = new OpenAI({ baseURL: new URL("/api/v1", baseUrl).toString(), apiKey, maxRetries: 0, timeout: 30_000 });

try {
  const stream = await client.chat.completions.create({
    model: "echo/echo-1",
    messages: [{ role: "user", content: prompt }],
    stream: true,
  });
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
  }
  process.stdout.write("\n");
  console.error(`chunks: ${chunks}`);
} catch (error) {
  console.error(error instanceof OpenAI.APIError ? `${error.status} ${error.message}` : String(error));
  process.exit(1);
}
