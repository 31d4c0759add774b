// Drives one real Node client against the replay server and prints one JSON line on stdout:
// {"ok":true,"outcome":{...}} | {"ok":true,"response":{...}} | {"ok":false,"error":"...","where":"..."}.
// Usage: node run_client.mjs MODE BASE_URL [TOOLS_JSON]   (MODE: node-raw | node-stream | ai-sdk)
// Shipped with responses-conformance; copied next to the pinned node_modules it imports from.

const [mode, baseURL, toolsJson] = process.argv.slice(2);
const INPUT = "What is f of 1?";
const PARAMS = {
  type: "object",
  properties: { a: { type: "integer" } },
  required: ["a"],
  additionalProperties: false,
};
const TOOL = { type: "function", name: "f", description: "A test function.", parameters: PARAMS, strict: true };
const TOOLS = toolsJson ? JSON.parse(toolsJson) : [TOOL];

function where(err) {
  const stack = err && typeof err.stack === "string" ? err.stack.split("\n") : [];
  const frame = stack.find((l) => l.includes("node_modules")) || stack[1] || "";
  const name = err && err.constructor ? err.constructor.name : typeof err;
  // Inside a package: the path from node_modules on; elsewhere: the file's base name (no
  // machine-specific directories in the table).
  const at = frame.trim().replace(/^at\s+/, "");
  const loc = at.includes("node_modules/")
    ? at.replace(/\(?(file:\/\/)?\/[^()]*\/node_modules\//, "(").replace(/^\(/, "")
    : at.replace(/(file:\/\/)?\/[^()]*\/([^/()]+:\d+:\d+)/, "$2");
  return loc ? `${name} at ${loc}` : name;
}

function issues(err) {
  // zod (AI SDK) validation errors: name the first failing field rather than echo the value.
  const list = err && err.cause && Array.isArray(err.cause.issues) ? err.cause.issues : null;
  if (!list || !list.length) return "";
  let first = list[0];
  if (first.code === "invalid_union" && Array.isArray(first.errors)) {
    // The branch for this chunk's type is the one that does not fail on `type`.
    const branches = first.errors.filter((b) => Array.isArray(b) && b.length && !b.some((i) => (i.path || []).join(".") === "type"));
    branches.sort((a, b) => a.length - b.length);
    if (branches.length) first = branches[0][0];
  }
  return ` [${(first.path || []).join(".")}: ${first.message}]`;
}

function describe(err) {
  if (err instanceof Error) {
    const head = String(err.message).split("\n")[0];
    const short = head.startsWith("Type validation failed") ? "Type validation failed" : head;
    return `${err.constructor.name}: ${short}${issues(err)}`;
  }
  return `non-Error thrown: ${JSON.stringify(err).slice(0, 200)}`;
}

function usageOf(u) {
  if (!u) return null;
  const out = {};
  for (const k of ["input_tokens", "output_tokens", "total_tokens"]) if (Number.isInteger(u[k])) out[k] = u[k];
  return Object.keys(out).length ? out : null;
}

async function nodeRaw(OpenAI) {
  const client = new OpenAI({ baseURL, apiKey: "sk-replay", maxRetries: 0, timeout: 20000 });
  const stream = await client.responses.create({ model: "m", input: INPUT, tools: TOOLS, stream: true });
  const out = { text: "", refusal: "", reasoning: "", tool_calls: [], status: null, usage: null };
  for await (const ev of stream) {
    const t = ev && ev.type;
    if (t === "response.output_text.delta") out.text += ev.delta ?? "";
    else if (t === "response.refusal.delta") out.refusal += ev.delta ?? "";
    else if (t === "response.reasoning_summary_text.delta" || t === "response.reasoning_text.delta") out.reasoning += ev.delta ?? "";
    else if (t === "response.output_item.done" && ev.item && ev.item.type === "function_call")
      out.tool_calls.push({ call_id: ev.item.call_id ?? null, name: ev.item.name ?? null, arguments: ev.item.arguments ?? null });
    else if (t === "response.completed" || t === "response.incomplete" || t === "response.failed") {
      out.status = (ev.response && ev.response.status) ?? null;
      out.usage = usageOf(ev.response && ev.response.usage);
    }
  }
  return { outcome: out };
}

async function nodeStream(OpenAI) {
  const client = new OpenAI({ baseURL, apiKey: "sk-replay", maxRetries: 0, timeout: 20000 });
  const stream = client.responses.stream({ model: "m", input: INPUT, tools: TOOLS });
  for await (const _ of stream) { /* consume */ }
  return { response: await stream.finalResponse() };
}

// content-filter is either a refusal (a completed response) or a filtered, incomplete one:
// passed through for the Python side to judge against what the stream carried.
const FINISH = { stop: "completed", "tool-calls": "completed", length: "incomplete", "content-filter": "content-filter" };

async function aiSdk() {
  const { streamText, tool, jsonSchema } = await import("ai");
  const { createOpenAI } = await import("@ai-sdk/openai");
  const openai = createOpenAI({ baseURL, apiKey: "sk-replay" });
  const errors = [];
  const result = streamText({
    model: openai.responses("m"),
    prompt: INPUT,
    tools: Object.fromEntries(
      TOOLS.map((t) => [t.name, tool({ description: t.description ?? "", inputSchema: jsonSchema(t.parameters ?? { type: "object" }) })]),
    ),
    maxRetries: 0,
    onError: () => {},
  });
  const out = { text: "", reasoning: "", tool_calls: [], status: null, usage: null };
  let finish = null;
  let usage = null;
  for await (const part of result.fullStream) {
    if (part.type === "text-delta") out.text += part.text ?? part.delta ?? part.textDelta ?? "";
    else if (part.type === "reasoning-delta") out.reasoning += part.text ?? part.delta ?? "";
    else if (part.type === "tool-call")
      out.tool_calls.push({ call_id: part.toolCallId ?? null, name: part.toolName ?? null, arguments: part.input ?? part.args ?? null });
    else if (part.type === "error") errors.push(part.error);
    else if (part.type === "finish") { finish = part.finishReason; usage = part.totalUsage ?? part.usage; }
  }
  if (errors.length) {
    const e = errors[0];
    const text = e instanceof Error ? describe(e) : JSON.stringify(e);
    const err = new Error(`${text} (${errors.length} error part(s), finishReason=${JSON.stringify(finish)})`);
    err.where = e instanceof Error ? where(e) : "streamText error part";
    throw err;
  }
  const reason = finish && typeof finish === "object" ? finish.unified ?? finish.type : finish;
  out.status = FINISH[reason] ?? `unfinished (finishReason=${reason})`;
  if (usage && (usage.inputTokens !== undefined || usage.outputTokens !== undefined)) {
    // totalTokens is the SDK's own sum, not the server's figure: not reported.
    out.usage = { input_tokens: usage.inputTokens ?? null, output_tokens: usage.outputTokens ?? null };
  }
  return { outcome: out };
}

async function main() {
  if (mode === "ai-sdk") return aiSdk();
  const OpenAI = (await import("openai")).default;
  if (mode === "node-raw") return nodeRaw(OpenAI);
  if (mode === "node-stream") return nodeStream(OpenAI);
  throw new Error(`unknown mode ${mode}`);
}

const timer = setTimeout(() => {
  process.stdout.write(JSON.stringify({ ok: false, error: "timeout: the client did not finish", where: "timeout" }) + "\n");
  process.exit(0);
}, 25000);

main().then(
  (r) => { clearTimeout(timer); process.stdout.write(JSON.stringify({ ok: true, ...r }) + "\n"); process.exit(0); },
  (e) => {
    clearTimeout(timer);
    const loc = e && e.where ? e.where : where(e);
    process.stdout.write(JSON.stringify({ ok: false, error: e && e.where ? e.message : describe(e), where: loc }) + "\n");
    process.exit(0);
  },
);
