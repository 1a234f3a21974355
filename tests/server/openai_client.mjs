// The official OpenAI client (npm package `openai`) against bitnet-server.
//   node openai_client.mjs NODE_MODULES BASE_URL API_KEY
// Prints one line per check and exits non-zero on the first failure.
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const [nodeModules, baseURL, apiKey] = process.argv.slice(2);
const require = createRequire(nodeModules + "/");
const mod = await import(require.resolve("openai"));
const OpenAI = mod.default || mod.OpenAI;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });

async function check(name, fn) {
  await fn();
  console.log("ok", name);
}

await check("models.list", async () => {
  const page = await client.models.list();
  const ids = [];
  for await (const m of page) ids.push(m.id);
  assert.equal(ids.length, 1);
  const one = await client.models.retrieve(ids[0]);
  assert.equal(one.id, ids[0]);
});

let plainText = null;
await check("chat.completions.create", async () => {
  const r = await client.chat.completions.create({
    model: "any", temperature: 0, max_tokens: 12,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }],
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  plainText = r.choices[0].message.content;
});

await check("chat.completions.create stream", async () => {
  const stream = await client.chat.completions.create({
    model: "any", temperature: 0, max_tokens: 12, stream: true, stream_options: { include_usage: true },
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }],
  });
  let text = "", finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    text += chunk.choices[0].delta.content || "";
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(text, plainText);
  assert.ok(finish === "length" || finish === "stop");
  assert.ok(usage && usage.completion_tokens > 0);
});

await check("completions.create (+ stream)", async () => {
  const r = await client.completions.create({ model: "any", prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
  assert.equal(r.object, "text_completion");
  const s = await client.completions.create({ model: "any", prompt: "Once upon a time", max_tokens: 8, temperature: 0, stream: true });
  let t = "";
  for await (const c of s) t += c.choices[0].text;
  assert.equal(t, r.choices[0].text);
});

await check("embeddings.create", async () => {
  // the client asks for base64 unless told otherwise, and decodes it
  const r = await client.embeddings.create({ model: "any", input: ["hello world", "bye"] });
  assert.equal(r.data.length, 2);
  const v = r.data[0].embedding;
  assert.ok(Array.isArray(v) && v.length > 0);
  const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, "L2-normalised");
  const f = await client.embeddings.create({ model: "any", input: "hello world", encoding_format: "float" });
  assert.ok(f.data[0].embedding.every((x, i) => Math.abs(x - v[i]) < 1e-6));
});

await check("errors are typed", async () => {
  await assert.rejects(client.chat.completions.create({ model: "any", messages: [] }),
                       (e) => e.status === 400 && e instanceof OpenAI.BadRequestError);
  const bad = new OpenAI({ baseURL, apiKey: "wrong-key", maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e.status === 401 && e instanceof OpenAI.AuthenticationError);
});
