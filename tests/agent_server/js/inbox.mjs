// Agent Inbox's calls to a LangGraph server, made with the JS SDK it uses,
// on the demo `support` graph; prints what the inbox would read as JSON.
//
//   node inbox.mjs URL [API_KEY]     (or LANGGRAPH_URL / LANGGRAPH_API_KEY)
//
// Threads are started as an agent would start them (threads.create, then a
// run that stops at the refund's interrupt); from there every call is one the
// inbox makes: threads.search for its "interrupted" and "all" tabs,
// threads.get and threads.getState for one thread, runs.stream with a
// command.resume and streamMode "events" to submit accept/edit/response,
// runs.create with an "ignore" response for its Ignore button, and
// threads.updateState(values null, asNode "__end__") for "Mark as Resolved".
// Ids and timestamps are replaced so two servers' answers compare.

import { Client } from "@langchain/langgraph-sdk";

const url = process.argv[2] ?? process.env.LANGGRAPH_URL;
const apiKey = process.argv[3] ?? process.env.LANGGRAPH_API_KEY;
if (!url) {
  console.error("usage: node inbox.mjs URL [API_KEY]");
  process.exit(2);
}

const GRAPH = "support";
const REFUND = "Please refund order A-1002, $1450: the parcel arrived broken";
const EMAIL = "Where is my order A-1001?";
// The case each thread is started for, and the user's request that makes
// the support agent ask a person (refunds may not be ignored, emails may).
const CASES = {
  accept: REFUND,
  edit: REFUND,
  response: REFUND,
  resolve: REFUND,
  ignore: EMAIL,
};
const EDITED = { order_id: "A-1002", amount: 99, reason: "partial refund" };
const IMPROPER_SCHEMA = "Error: Improper schema";

// The inbox gives its client the deployment URL and the LangSmith API key.
const client = new Client({ apiUrl: url, apiKey: apiKey || undefined });

// As a browser page on INBOX_ORIGIN: every request says where it comes from,
// and a response the browser would withhold from the page (no
// Access-Control-Allow-Origin for it) is noted.
const origin = process.env.INBOX_ORIGIN;
const withheld = [];
if (origin) {
  const fetchAsIs = globalThis.fetch;
  globalThis.fetch = async (input, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set("Origin", origin);
    const response = await fetchAsIs(input, { ...init, headers });
    const allowed = response.headers.get("access-control-allow-origin");
    if (allowed !== origin && allowed !== "*") {
      const path = new URL(String(input)).pathname.slice(new URL(url).pathname.length);
      withheld.push(`${init.method ?? "GET"} ${path} ${response.status}`);
    }
    return response;
  };
}

const names = new Map();
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;

function normalise(value) {
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [normalise(k), normalise(v)]),
    );
  }
  if (typeof value !== "string") return value;
  if (TIME.test(value)) return "<time>";
  return value
    .replace(UUID, (id) => names.get(id) ?? "<id>")
    .replace(/\bcall_[0-9a-f]{12}\b/g, "<call>")
    .replace(/^[0-9a-f]{32}$/, "<interrupt-id>");
}

// What the inbox makes of a thread's `interrupts`: the HumanInterrupt list
// in the first interrupt's value of each task, or an improper schema.
function humanInterrupts(thread) {
  const byTask = Object.values(thread.interrupts ?? {});
  if (byTask.length === 0) return undefined;
  return byTask.flatMap((interrupts) => {
    const value = Array.isArray(interrupts) ? interrupts[0]?.value : undefined;
    const requests = Array.isArray(value) ? value : [value];
    if (requests.every((r) => r && r.action_request && r.config)) {
      return requests;
    }
    return [{ action_request: { action: IMPROPER_SCHEMA, args: {} } }];
  });
}

// threads.search exactly as the inbox sends it for a tab.
async function inboxTab(tab) {
  const threads = await client.threads.search({
    offset: 0,
    limit: 10,
    ...(tab === "all" ? {} : { status: tab }),
    metadata: { graph_id: GRAPH },
  });
  return threads;
}

// The inbox's fetchSingleThread: the thread, and its state only when the
// thread is interrupted without `interrupts` to read.
async function singleThread(threadId) {
  const thread = await client.threads.get(threadId);
  let interrupts;
  let fromState = false;
  if (thread.status === "interrupted") {
    interrupts = humanInterrupts(thread);
    if (!interrupts?.length) {
      const state = await client.threads.getState(threadId);
      const task = state.tasks[state.tasks.length - 1];
      interrupts = task?.interrupts[task.interrupts.length - 1]?.value;
      fromState = true;
    }
  }
  return { thread, interrupts, fromState };
}

// One submitted response, streamed as the inbox streams it; what it reads
// of each chunk: the node an on_chain_start names, and error events.
async function submit(threadId, response) {
  const chunks = client.runs.stream(threadId, GRAPH, {
    command: { resume: [response] },
    streamMode: "events",
  });
  const events = [];
  const nodes = [];
  const errors = [];
  for await (const chunk of chunks) {
    events.push(chunk.event);
    if (chunk.data?.event === "on_chain_start" && chunk.data?.metadata?.langgraph_node) {
      nodes.push(chunk.data.metadata.langgraph_node);
    } else if (chunk.event === "error") {
      errors.push(chunk.data);
    }
  }
  return { events: collapse(events), nodes: collapse(nodes), errors };
}

// Runs of one name as [name, count]: the number of `events` chunks is an
// implementation detail of the callbacks, their kinds are not.
function collapse(items) {
  const runs = [];
  for (const item of items) {
    const last = runs[runs.length - 1];
    if (last && last[0] === item) last[1] += 1;
    else runs.push([item, 1]);
  }
  return runs;
}

async function afterwards(threadId) {
  const { thread, interrupts } = await singleThread(threadId);
  const state = await client.threads.getState(threadId);
  return { thread, interrupts, state };
}

// Adding an inbox: the URL is checked with a plain GET of /info (no key,
// no headers) and refused unless it answers 2xx; for a deployed URL, /info
// is read again for the host's project and tenant ids.
async function addInbox() {
  const response = await fetch(`${url.replace(/\/$/, "")}/info`, { method: "GET" });
  const info = response.ok ? await response.json() : null;
  return {
    reachable: response.ok,
    status: response.status,
    host: info?.host && {
      project_id: info.host.project_id ?? null,
      tenant_id: info.host.tenant_id ?? null,
    },
  };
}

async function main() {
  const adding = await addInbox();
  const ids = {};
  const started = {};
  for (const [name, text] of Object.entries(CASES)) {
    const thread = await client.threads.create();
    ids[name] = thread.thread_id;
    names.set(thread.thread_id, `<thread:${name}>`);
    const run = await client.runs.create(thread.thread_id, GRAPH, {
      input: { messages: [{ role: "user", content: text }] },
    });
    names.set(run.run_id, `<run:${name}>`);
    const values = await client.runs.join(thread.thread_id, run.run_id);
    started[name] = values.__interrupt__;
  }
  const ours = new Set(Object.values(ids));
  const listing = async (tab) =>
    (await inboxTab(tab)).filter((t) => ours.has(t.thread_id));

  const interrupted = await listing("interrupted");
  const inbox = {
    interrupted: interrupted.map((thread) => ({
      thread,
      interrupts: humanInterrupts(thread),
    })),
    all: (await listing("all")).map((t) => [t.thread_id, t.status]),
    single: {},
    state: {},
  };
  for (const [name, threadId] of Object.entries(ids)) {
    inbox.single[name] = await singleThread(threadId);
    inbox.state[name] = await client.threads.getState(threadId);
  }

  const request = (name) => inbox.single[name].interrupts[0].action_request;
  const sent = {
    // An untouched edit form is sent as an accept of the request as asked.
    accept: { type: "accept", args: request("accept") },
    edit: { type: "edit", args: { action: request("edit").action, args: EDITED } },
    response: { type: "response", args: "Please send a photo of the parcel first." },
  };
  const actions = {};
  for (const [name, response] of Object.entries(sent)) {
    const streamed = await submit(ids[name], response);
    actions[name] = { sent: response, streamed, ...(await afterwards(ids[name])) };
  }

  // The Ignore button (shown when the interrupt allows it): a run that
  // resumes with an ignore response, not streamed.
  const ignoreRun = await client.runs.create(ids.ignore, GRAPH, {
    command: { resume: [{ type: "ignore", args: null }] },
  });
  names.set(ignoreRun.run_id, "<run:ignore-response>");
  await client.runs.join(ids.ignore, ignoreRun.run_id);
  actions.ignore = { sent: { type: "ignore", args: null }, ...(await afterwards(ids.ignore)) };

  // "Mark as Resolved": the thread ends where it stands.
  const resolved = await client.threads.updateState(ids.resolve, {
    values: null,
    asNode: "__end__",
  });
  actions.resolve = { answer: resolved, ...(await afterwards(ids.resolve)) };

  // An inbox may name the graph's assistant by its id instead: the inbox
  // then filters threads on metadata.assistant_id and runs that assistant.
  const [assistant] = await client.assistants.search({ graphId: GRAPH, limit: 1 });
  const byAssistant = (
    await client.threads.search({ offset: 0, limit: 10, metadata: { assistant_id: assistant.assistant_id } })
  ).filter((t) => ours.has(t.thread_id));

  const remaining = await listing("interrupted");
  const out = {
    ids,
    adding,
    started,
    inbox,
    actions,
    still_interrupted: remaining.map((t) => names.get(t.thread_id)).sort(),
    all_after: (await listing("all"))
      .map((t) => [names.get(t.thread_id), t.status])
      .sort(),
    idle_after: (await listing("idle")).map((t) => names.get(t.thread_id)).sort(),
    by_assistant_id: byAssistant.map((t) => names.get(t.thread_id)).sort(),
    withheld: origin ? withheld : null,
  };
  // Thread ids are printed as they are, for the caller's own look-ups.
  const { ids: raw, ...rest } = out;
  process.stdout.write(JSON.stringify({ ids: raw, ...normalise(rest) }, null, 2) + "\n");
}

main().catch((error) => {
  console.error(error?.stack ?? error);
  process.exit(1);
});
