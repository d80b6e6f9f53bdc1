// The work after a session's turn, off the request path: facts extracted by a model, evicted
// turns folded into rolling summaries, memory texts embedded for vector similarity. Each job
// is a request the gateway makes to itself (LocalCaller) as the client whose turn it was, so
// routing, translation, retries, limits, budgets and usage all apply; a job never blocks or
// fails the client's request, and at most state.sessions.background_jobs run at once.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "api/responses_util.h"
#include "api/sessions.h"
#include "frontends/responses/responses.h"
#include "observe/metrics.h"
#include "sessions/extract.h"

namespace sluice::api {

namespace json = canonical::json;
namespace rs = canonical::responses;

namespace {

// sluice_session_jobs_total{job, outcome}
void count_job(std::string_view job, std::string_view outcome) {
  static constexpr std::array<std::string_view, 3> kJobs = {"extract", "summary", "embedding"};
  static constexpr std::array<std::string_view, 5> kOutcomes = {"ok", "empty", "failed",
                                                                "dropped", "skipped"};
  static const auto cells = [] {
    std::array<std::array<observe::Cell, kOutcomes.size()>, kJobs.size()> c{};
    for (size_t j = 0; j < kJobs.size(); ++j) {
      for (size_t o = 0; o < kOutcomes.size(); ++o) {
        c[j][o] = observe::Registry::instance().counter(
            "sluice_session_jobs_total",
            "Work after session turns (fact extraction, summaries, embeddings) by outcome.",
            observe::label("job", kJobs[j]) + "," + observe::label("outcome", kOutcomes[o]));
      }
    }
    return c;
  }();
  const size_t j = static_cast<size_t>(std::find(kJobs.begin(), kJobs.end(), job) - kJobs.begin());
  const size_t o =
      static_cast<size_t>(std::find(kOutcomes.begin(), kOutcomes.end(), outcome) - kOutcomes.begin());
  if (j < kJobs.size() && o < kOutcomes.size()) observe::add(cells[j][o]);
}

// A job's failure, logged at most once a minute per job kind (a broken extraction model must
// not flood the log), counted always.
void job_failed(std::string_view job, std::string_view session, std::string_view why) {
  count_job(job, "failed");
  static std::mutex mu;
  static std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> last;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu);
  auto [it, fresh] = last.try_emplace(std::string(job), now);
  if (!fresh && now - it->second < std::chrono::minutes(1)) return;
  it->second = now;
  spdlog::warn("sessions: {} for {} failed: {}", job, session, why);
}

// Why a call failed, for the log: its status and the start of its error body.
std::string call_error(const LocalAnswer& a) {
  return "status " + std::to_string(a.status) + ": " + a.body.substr(0, 300);
}

}  // namespace

void count_fact(MemoryWrite::Action action) {
  static const auto cells = [] {
    std::array<observe::Cell, 3> c{};
    const char* names[] = {"added", "reinforced", "superseded"};
    for (size_t i = 0; i < 3; ++i) {
      c[i] = observe::Registry::instance().counter(
          "sluice_session_memory_writes_total",
          "Memories written (API and extraction): added, the same fact reinforced, or a key's "
          "text superseded (the old one closed).",
          observe::label("action", names[i]));
    }
    return c;
  }();
  observe::add(cells[static_cast<size_t>(action)]);
}

std::shared_ptr<void> SessionsApi::begin_job(std::string_view job) {
  std::shared_ptr<void> hold = caller_.hold();
  if (!hold) return nullptr;
  if (jobs_.fetch_add(1) >= config_.background_jobs) {
    jobs_.fetch_sub(1);
    count_job(job, "dropped");
    return nullptr;
  }
  // The slot is given back when the last copy of the hold goes (whatever way the job ends).
  struct Slot {
    std::shared_ptr<void> hold;
    std::atomic<int>* jobs;
    ~Slot() { jobs->fetch_sub(1); }
  };
  return std::make_shared<Slot>(Slot{std::move(hold), &jobs_});
}

void SessionsApi::after_turn(asio::any_io_executor ex, std::shared_ptr<AfterTurn> after,
                             int64_t seq, std::string transcript) {
  if (!after->tuning.extract_model.empty()) {
    if (auto hold = begin_job("extract")) {
      asio::co_spawn(ex, extract_job(std::move(hold), after, seq, std::move(transcript)),
                     asio::detached);
    }
  }
  if (!after->to_summarize.empty()) {
    if (auto hold = begin_job("summary")) {
      asio::co_spawn(ex, summary_job(std::move(hold), after), asio::detached);
    }
  }
}

asio::awaitable<void> SessionsApi::extract_job(std::shared_ptr<void> hold,
                                               std::shared_ptr<AfterTurn> after, int64_t seq,
                                               std::string transcript) {
  const AfterTurn& a = *after;
  const std::string path = "/v1/chat/completions";
  const std::string purpose = "extract";
  const std::string body = sessions::extraction_request(a.tuning.extract_model, transcript, a.known_keys);
  const LocalAnswer answer = co_await caller_.call(path, body, a.who, *a.worker, purpose);
  if (answer.status != 200) co_return job_failed("extract", a.session_id, call_error(answer));
  auto text = sessions::completion_text(answer.body);
  if (!text) co_return job_failed("extract", a.session_id, text.error().message);
  auto facts = sessions::parse_facts(*text);
  if (!facts) co_return job_failed("extract", a.session_id, facts.error().message);
  if (facts->empty()) co_return count_job("extract", "empty");
  const auto ex = co_await asio::this_coro::executor;
  for (const sessions::Fact& f : *facts) {
    const int64_t now_s = store::system_now_ms() / 1000;
    const json::object mem{{"id", rs::new_id("mem")},
                           {"object", "session.memory"},
                           {"key", f.key},
                           {"text", f.text},
                           {"weight", f.weight},
                           {"source_turns", json::array{seq}},
                           {"tags", json::array{"extracted"}},
                           {"created_at", now_s},
                           {"last_access", now_s},
                           {"valid_from", now_s},
                           {"valid_to", nullptr},
                           {"ttl", nullptr},
                           {"expires_at", nullptr}};
    const std::string id = a.session_id;
    const std::chrono::milliseconds life = a.life;
    const auto op = [id, mem, now_s, life](store::StateStore& s) {
      return upsert_memory(s, id, mem, now_s, life);
    };
    auto saved = co_await state_->run(op);
    count_state_write("memory", saved.ok());
    if (!saved) co_return job_failed("extract", a.session_id, saved.error().message);
    count_fact(saved->action);
    if (saved->needs_embedding) start_embedding(ex, a.session_id, saved->memory, a.who, *a.worker, life);
  }
  count_job("extract", "ok");
}

asio::awaitable<void> SessionsApi::summary_job(std::shared_ptr<void> hold,
                                               std::shared_ptr<AfterTurn> after) {
  const AfterTurn& a = *after;
  // One summary per session at a time in this process (the store check below covers others).
  {
    std::lock_guard lock(summarizing_mu_);
    if (!summarizing_.insert(a.session_id).second) co_return count_job("summary", "skipped");
  }
  struct Done {
    SessionsApi& api;
    const std::string& id;
    ~Done() {
      std::lock_guard lock(api.summarizing_mu_);
      api.summarizing_.erase(id);
    }
  } done{*this, a.session_id};
  // The turns themselves (never an earlier summary), oldest first.
  canonical::Request messages;
  for (const store::ListItem& item : a.to_summarize) {
    auto turn = parse_record(item.value);
    if (!turn) continue;
    if (const json::value* items = turn->if_contains("items"); items && items->is_array()) {
      rs::append_items(items->as_array(), messages);
    }
  }
  const int64_t from = a.to_summarize.front().seq;
  const int64_t to = a.to_summarize.back().seq + 1;
  const std::string path = "/v1/chat/completions";
  const std::string purpose = "summary";
  const std::string body = sessions::summary_request(
      a.tuning.summary_model, sessions::transcript(messages.messages, 32 * 1024));
  const LocalAnswer answer = co_await caller_.call(path, body, a.who, *a.worker, purpose);
  if (answer.status != 200) co_return job_failed("summary", a.session_id, call_error(answer));
  auto text = sessions::completion_text(answer.body);
  if (!text) co_return job_failed("summary", a.session_id, text.error().message);
  if (text->empty()) co_return count_job("summary", "empty");
  const std::string list = "sums:" + a.session_id;
  const std::string value = canonical::to_text(json::object{{"object", "session.summary"},
                                                           {"from", from},
                                                           {"to", to},
                                                           {"text", *text},
                                                           {"created_at", store::system_now_ms() / 1000}});
  const std::string sid = rs::new_id("sum");
  const std::chrono::milliseconds life = a.life;
  // Appended only if it starts where the last one ends (another instance may have been first).
  const auto op = [list, value, sid, from, life](store::StateStore& store) -> Result<bool> {
    bool added = false;
    auto r = store.atomically(list, [&](store::StateStore& s) -> Result<void> {
      auto last = s.range(list, "", 1, true);
      if (!last) return std::move(last.error());
      if (!last->items.empty()) {
        auto prev = parse_record(last->items.front().value);
        if (prev && canonical::integer(*prev, "to").value_or(0) > from) return {};
      }
      if (auto a = s.append(list, {store::ListItem{sid, value}}, life); !a) return std::move(a.error());
      added = true;
      return {};
    });
    if (!r) return std::move(r.error());
    return added;
  };
  auto added = co_await state_->run(op);
  if (!added) co_return job_failed("summary", a.session_id, added.error().message);
  count_job("summary", *added ? "ok" : "skipped");
}

void SessionsApi::start_embedding(asio::any_io_executor ex, const std::string& id,
                                  const json::object& memory, const Identity& who,
                                  WorkerContext& worker, std::chrono::milliseconds life) {
  if (config_.embeddings_model.empty()) return;
  auto hold = begin_job("embedding");
  if (!hold) return;
  asio::co_spawn(ex,
                 embedding_job(std::move(hold), id, std::string(str_of(memory, "id")),
                               std::string(str_of(memory, "text")), who, &worker, life),
                 asio::detached);
}

asio::awaitable<void> SessionsApi::embedding_job(std::shared_ptr<void> hold, std::string id,
                                                 std::string mid, std::string text, Identity who,
                                                 WorkerContext* worker,
                                                 std::chrono::milliseconds life) {
  auto vec = co_await embed(text, who, *worker);
  if (!vec) co_return;  // counted by embed()
  json::array values;
  values.reserve(vec->size());
  for (float x : *vec) values.push_back(static_cast<double>(x));
  const std::string list = "mems:" + id;
  const std::string ver_key = "memver:" + id;
  // Stored with the memory only if its text is still the one embedded.
  const auto op = [list, mid, text, values, ver_key, life](store::StateStore& store) -> Result<bool> {
    bool stored = false;
    auto r = store.atomically(list, [&](store::StateStore& s) -> Result<void> {
      auto item = s.item(list, mid);
      if (!item) return std::move(item.error());
      if (!item->has_value()) return {};
      auto m = parse_record(**item);
      if (!m || str_of(*m, "text") != text) return {};
      (*m)["embedding"] = values;
      if (auto w = s.replace_item(list, mid, canonical::to_text(*m)); !w) return std::move(w.error());
      stored = true;
      return {};
    });
    if (r && stored) r = store.put(ver_key, rs::new_id("v"), "", life);
    if (!r) return std::move(r.error());
    return stored;
  };
  auto stored = co_await state_->run(op);
  if (!stored) co_return job_failed("embedding", id, stored.error().message);
  count_job("embedding", *stored ? "ok" : "skipped");
}

asio::awaitable<std::optional<std::vector<float>>> SessionsApi::embed(const std::string& text,
                                                                       const Identity& who,
                                                                       WorkerContext& worker) {
  if (config_.embeddings_model.empty()) co_return std::nullopt;
  const std::string path = "/v1/embeddings";
  const std::string purpose = "embedding";
  const std::string body = sessions::embeddings_request(config_.embeddings_model, text);
  const LocalAnswer answer = co_await caller_.call(path, body, who, worker, purpose);
  if (answer.status != 200) {
    job_failed("embedding", "a memory", call_error(answer));
    co_return std::nullopt;
  }
  auto vec = sessions::embedding_of(answer.body);
  if (!vec) {
    job_failed("embedding", "a memory", vec.error().message);
    co_return std::nullopt;
  }
  co_return std::move(*vec);
}

asio::awaitable<void> SessionsApi::embed_query(const std::string& text, const Identity& who,
                                               WorkerContext& worker,
                                               sessions::ScoreParams& params) {
  if (config_.embeddings_model.empty() || text.empty()) co_return;
  auto vec = co_await embed(text, who, worker);
  if (!vec) co_return;  // BM25 alone
  params.query_vector = std::move(*vec);
  params.vector_weight = config_.vector_weight;
}

}  // namespace sluice::api
