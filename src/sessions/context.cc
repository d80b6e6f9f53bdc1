// Memory scoring and context packing: see context.h.
#include "sessions/context.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/saturating.h"

namespace sluice::sessions {

using canonical::Block;
using canonical::BlockKind;
using canonical::Message;

namespace {

// A light English suffix stripper (plurals, -ing, -ed) so "lives", "living" and "lived" meet
// "live"; words with digits or non-ASCII bytes are left as they are. In place: the scorer
// tokenizes every memory on every query and must not allocate per word.
void stem(std::string& w) {
  for (char c : w) {
    if (!std::isalpha(static_cast<unsigned char>(c))) return;
  }
  auto ends = [&](std::string_view s) { return w.size() > s.size() && w.ends_with(s); };
  if (ends("ies") && w.size() > 4) {
    w.resize(w.size() - 3);
    w += 'y';
  } else if (ends("sses")) {
    w.resize(w.size() - 2);
  } else if (ends("s") && !ends("ss") && !ends("us") && !ends("is") && w.size() > 3) {
    w.pop_back();
  } else if (ends("ing") && w.size() > 5) {
    w.resize(w.size() - 3);
  } else if (ends("ed") && w.size() > 4) {
    w.resize(w.size() - 2);
  }
  // "liv" (from living/lived) and "live" (from lives) meet on the stem without a final e.
  if (w.size() > 3 && w.back() == 'e') w.pop_back();
}

// Calls f(token) for each token of `text`, built in `buf` (reused).
template <class F>
void for_each_token(std::string_view text, std::string& buf, F&& f) {
  buf.clear();
  auto flush = [&] {
    if (buf.empty()) return;
    stem(buf);
    f(std::string_view(buf));
    buf.clear();
  };
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      buf += static_cast<char>(u < 0x80 ? std::tolower(u) : u);
    } else {
      flush();
    }
  }
  flush();
}

// Words too common to tell memories apart (after stemming), and one-letter words ("'s").
bool stopword(std::string_view t) {
  // Sorted: looked up by binary search (this runs for every token of every memory scored).
  static constexpr std::string_view kWords[] = {
      "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
      "been", "before", "but", "by", "can", "could", "did", "do", "doe", "for", "from", "ha",
      "had", "hav", "he", "her", "hi", "him", "how", "i", "if", "in", "into", "is", "it", "its",
      "me", "my", "no", "not", "of", "on", "or", "our", "she", "so", "than", "that", "the",
      "their", "them", "then", "there", "these", "they", "thi", "to", "up", "wa", "we", "wer",
      "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your"};
  if (t.size() == 1 && !std::isdigit(static_cast<unsigned char>(t[0]))) return true;
  return std::binary_search(std::begin(kWords), std::end(kWords), t);
}

// Best first (ties: the later document first), the first k kept.
void top_k(std::vector<Scored>& scored, size_t k) {
  auto better = [](const Scored& a, const Scored& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.index > b.index;
  };
  if (scored.size() > k) {
    std::partial_sort(scored.begin(), scored.begin() + static_cast<ptrdiff_t>(k), scored.end(),
                      better);
    scored.resize(k);
  } else {
    std::sort(scored.begin(), scored.end(), better);
  }
}

}  // namespace

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::string buf;
  for_each_token(text, buf, [&](std::string_view t) { out.emplace_back(t); });
  return out;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return 0;
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na <= 0 || nb <= 0) return 0;
  return dot / std::sqrt(na * nb);
}

namespace {

// The relevance of a document whose BM25 divided by the best is `lexical`.
double relevance_of(double lexical, const MemoryDoc& doc, const ScoreParams& params,
                    double& similarity) {
  if (params.query_vector.empty()) return lexical;
  similarity = cosine(params.query_vector, doc.embedding);
  const double w = std::clamp(params.vector_weight, 0.0, 1.0);
  return (1 - w) * lexical + w * std::max(0.0, similarity);
}

// The rest of a score once its BM25 and the best BM25 are known: relevance, recency, weight
// and their weighted sum (one place, so the index and the one-off scorer agree to the bit).
void complete(Scored& s, const MemoryDoc& doc, double best, int64_t now_ms,
              const ScoreParams& params) {
  s.relevance = relevance_of(best > 0 ? s.bm25 / best : 0, doc, params, s.similarity);
  const double per_s = params.half_life_s > 0 ? 1.0 / params.half_life_s : 0;
  const double age_s = std::max<double>(0, static_cast<double>(now_ms - doc.last_access_ms) / 1000.0);
  s.recency = per_s > 0 ? std::exp2(-age_s * per_s) : 0;
  s.weight = std::clamp(doc.weight, 0.0, 1.0);
  s.score = params.alpha * s.relevance + params.beta * s.recency + params.gamma * s.weight;
}

}  // namespace

std::vector<Scored> score_memories(const std::vector<MemoryDoc>& docs, std::string_view query,
                                   size_t k, int64_t now_ms, const ScoreParams& params) {
  constexpr double k1 = 1.2, b = 0.75;
  // The distinct query terms (a query has few: a linear scan beats hashing).
  std::vector<std::string> terms;
  for (std::string& t : tokenize(query)) {
    if (stopword(t)) continue;
    if (std::find(terms.begin(), terms.end(), t) == terms.end()) terms.push_back(std::move(t));
  }
  const size_t nt = terms.size();
  // Per document: its length and the frequencies of the query terms (flat, docs × terms).
  std::vector<uint32_t> tf(docs.size() * nt, 0);
  std::vector<uint32_t> len(docs.size(), 0);
  std::vector<uint32_t> df(nt, 0);
  double total_len = 0;
  std::string buf;
  for (size_t i = 0; i < docs.size(); ++i) {
    uint32_t* row = tf.data() + i * nt;
    auto count = [&](std::string_view t) {
      if (stopword(t)) return;
      len[i]++;
      for (size_t j = 0; j < nt; ++j) {
        if (terms[j] == t) {
          row[j]++;
          break;
        }
      }
    };
    for_each_token(docs[i].key, buf, count);
    for_each_token(docs[i].text, buf, count);
    total_len += len[i];
    for (size_t j = 0; j < nt; ++j) df[j] += row[j] > 0 ? 1 : 0;
  }
  const double n = static_cast<double>(docs.size());
  const double avg = docs.empty() ? 1 : std::max(1.0, total_len / n);
  std::vector<double> idf(nt);
  for (size_t j = 0; j < nt; ++j) idf[j] = std::log(1 + (n - df[j] + 0.5) / (df[j] + 0.5));
  std::vector<Scored> scored(docs.size());
  double best = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    double s = 0;
    const uint32_t* row = tf.data() + i * nt;
    for (size_t j = 0; j < nt; ++j) {
      if (row[j] == 0) continue;
      const double f = row[j];
      s += idf[j] * f * (k1 + 1) / (f + k1 * (1 - b + b * static_cast<double>(len[i]) / avg));
    }
    scored[i].index = i;
    scored[i].bm25 = s;
    best = std::max(best, s);
  }
  for (size_t i = 0; i < docs.size(); ++i) complete(scored[i], docs[i], best, now_ms, params);
  top_k(scored, k);
  return scored;
}

// ---- MemoryIndex ------------------------------------------------------------------------------

MemoryIndex::MemoryIndex(std::vector<MemoryDoc> docs, std::vector<int64_t> expires_at_ms)
    : docs_(std::move(docs)), expires_(std::move(expires_at_ms)) {
  expires_.resize(docs_.size(), 0);
  len_.assign(docs_.size(), 0);
  std::unordered_map<std::string, uint32_t> tf;
  std::string buf;
  double total = 0;
  for (size_t i = 0; i < docs_.size(); ++i) {
    tf.clear();
    auto count = [&](std::string_view t) {
      if (stopword(t)) return;
      len_[i]++;
      tf[std::string(t)]++;
    };
    for_each_token(docs_[i].key, buf, count);
    for_each_token(docs_[i].text, buf, count);
    total += len_[i];
    for (const auto& [term, f] : tf) postings_[term].emplace_back(static_cast<uint32_t>(i), f);
  }
  avg_len_ = docs_.empty() ? 1 : std::max(1.0, total / static_cast<double>(docs_.size()));
}

std::vector<Scored> MemoryIndex::search(std::string_view query, size_t k, int64_t now_ms,
                                        const ScoreParams& params) const {
  constexpr double k1 = 1.2, b = 0.75;
  std::vector<std::string> terms;
  for (std::string& t : tokenize(query)) {
    if (stopword(t)) continue;
    if (std::find(terms.begin(), terms.end(), t) == terms.end()) terms.push_back(std::move(t));
  }
  const double n = static_cast<double>(docs_.size());
  std::vector<double> bm25(docs_.size(), 0.0);
  // Terms in query order, as score_memories sums them: the same figures to the last bit.
  for (const std::string& term : terms) {
    auto it = postings_.find(term);
    if (it == postings_.end()) continue;
    const double d = static_cast<double>(it->second.size());
    const double idf = std::log(1 + (n - d + 0.5) / (d + 0.5));
    for (const auto& [doc, freq] : it->second) {
      const double f = freq;
      bm25[doc] += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * static_cast<double>(len_[doc]) / avg_len_));
    }
  }
  auto live = [&](size_t i) { return expires_[i] == 0 || expires_[i] > now_ms; };
  double best = 0;
  for (size_t i = 0; i < docs_.size(); ++i) {
    if (bm25[i] > best && live(i)) best = bm25[i];
  }
  auto make = [&](size_t i) {
    Scored s;
    s.index = i;
    s.bm25 = bm25[i];
    complete(s, docs_[i], best, now_ms, params);
    return s;
  };
  // The k best kept in a heap (worst on top): no Scored for every memory.
  auto worse = [](const Scored& a, const Scored& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.index > b.index;
  };
  std::vector<Scored> scored;
  scored.reserve(k + 1);
  if (k > 0) {
    for (size_t i = 0; i < docs_.size(); ++i) {
      if (!live(i)) continue;
      Scored s = make(i);
      if (scored.size() < k) {
        scored.push_back(s);
        std::push_heap(scored.begin(), scored.end(), worse);
      } else if (worse(s, scored.front())) {
        std::pop_heap(scored.begin(), scored.end(), worse);
        scored.back() = s;
        std::push_heap(scored.begin(), scored.end(), worse);
      }
    }
  }
  top_k(scored, k);
  return scored;
}

std::string join_words(std::string_view text, char sep) {
  std::string out;
  bool gap = false;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      if (gap && !out.empty()) out += sep;
      gap = false;
      out += static_cast<char>(u < 0x80 ? std::tolower(u) : u);
    } else {
      gap = true;
    }
  }
  return out;
}

int64_t estimate_tokens(const std::vector<Block>& blocks) {
  int64_t bytes = 0, extra = 0;
  for (const Block& b : blocks) {
    switch (b.kind) {
      case BlockKind::image: extra = sat_add(extra, int64_t{765}); break;
      case BlockKind::tool_use:
        bytes = sat_add(bytes, static_cast<int64_t>(b.tool_name.size() + b.tool_input.size()));
        break;
      case BlockKind::tool_result:
        bytes = sat_add(bytes, static_cast<int64_t>(b.tool_id.size()));
        extra = sat_add(extra, estimate_tokens(b.content));
        break;
      default:
        bytes = sat_add(bytes, static_cast<int64_t>(b.text.size() + b.data.size()));
    }
    extra = sat_add(extra, int64_t{3});  // per block framing
  }
  return sat_add((bytes + 3) / 4, extra);
}

int64_t estimate_tokens(const std::vector<Message>& messages) {
  int64_t total = 0;
  for (const Message& m : messages) total = sat_add(total, sat_add(estimate_tokens(m.content), int64_t{4}));
  return total;
}

namespace {

bool starts_with_tool_result(const std::vector<Message>& turn) {
  if (turn.empty() || turn.front().content.empty()) return false;
  return turn.front().content.front().kind == BlockKind::tool_result;
}

int64_t tools_tokens(const canonical::Request& req) {
  int64_t t = 0;
  for (const canonical::Tool& tool : req.tools) {
    t = sat_add(t, static_cast<int64_t>(
                       (tool.name.size() + tool.description.size() + tool.parameters.size() + 3) / 4));
  }
  return t;
}

}  // namespace

PackResult pack(canonical::Request& req, PackInput input) {
  PackResult r;
  int64_t used = sat_add(sat_add(estimate_tokens(req.system), estimate_tokens(req.messages)),
                         tools_tokens(req));
  // Memories, best first, within their sub-budget and the whole budget.
  std::string memory_text;
  int64_t memory_tokens = 0;
  for (const std::string& line : input.memory_lines) {
    // A line's tokens, and the block's heading with the first one.
    const int64_t t = static_cast<int64_t>((line.size() + 3) / 4) + 2 + (r.memories_used == 0 ? 10 : 0);
    if (sat_add(memory_tokens, t) > input.memory_budget || sat_add(used, t) > input.budget) break;
    memory_text += "\n- ";
    memory_text += line;
    memory_tokens = sat_add(memory_tokens, t);
    used = sat_add(used, t);
    r.memories_used++;
  }
  if (r.memories_used > 0) {
    Block b;
    b.text = "Relevant memories from this session:" + memory_text;
    req.system.push_back(std::move(b));
  }
  // What summaries may take is set aside before the turns (else the turns always win it).
  // A summary's line ("\n- (turns F-T) text") and, with the first, the block's heading and
  // framing.
  constexpr int64_t kSummaryHeading = 16;
  auto summary_tokens = [](const SummaryDoc& d) {
    return static_cast<int64_t>((d.text.size() + 30 + 3) / 4);
  };
  int64_t reserve = input.summaries.empty() ? 0 : kSummaryHeading;
  for (const SummaryDoc& d : input.summaries) reserve = sat_add(reserve, summary_tokens(d));
  reserve = std::clamp<int64_t>(std::min(reserve, input.memory_budget - memory_tokens), 0,
                                std::max<int64_t>(0, input.budget - used));
  // Whole turns, newest first.
  size_t first = input.turns.size();  // index of the oldest turn kept
  while (first > 0) {
    const int64_t t = estimate_tokens(input.turns[first - 1]);
    if (sat_add(sat_add(used, reserve), t) > input.budget) break;
    used = sat_add(used, t);
    --first;
  }
  // A kept turn that answers a call in a turn left out goes too (and so on).
  while (first > 0 && first < input.turns.size() && starts_with_tool_result(input.turns[first])) {
    used -= estimate_tokens(input.turns[first]);
    ++first;
  }
  auto number = [&](size_t i) {
    return i < input.turn_numbers.size() ? input.turn_numbers[i] : static_cast<int64_t>(i);
  };
  r.first_kept_turn = first < input.turns.size() ? number(first)
                      : input.turns.empty()      ? 0
                                                 : number(input.turns.size() - 1) + 1;
  // Summaries of turns left out, newest first, in the reserve.
  std::vector<const SummaryDoc*> chosen;
  int64_t summary_used = 0;
  for (auto it = input.summaries.rbegin(); it != input.summaries.rend(); ++it) {
    if (it->to > r.first_kept_turn || it->text.empty()) continue;
    const int64_t t = summary_tokens(*it) + (chosen.empty() ? kSummaryHeading : 0);
    if (sat_add(summary_used, t) > reserve) break;
    summary_used = sat_add(summary_used, t);
    chosen.push_back(&*it);
  }
  if (!chosen.empty()) {
    used = sat_add(used, summary_used);
    r.summaries_used = chosen.size();
    Block b;
    b.text = "Summary of earlier turns of this conversation:";
    for (auto it = chosen.rbegin(); it != chosen.rend(); ++it) {
      b.text += "\n- (turns " + std::to_string((*it)->from) + "-" +
                std::to_string((*it)->to - 1) + ") " + (*it)->text;
    }
    req.system.push_back(std::move(b));
  }
  std::vector<Message> messages;
  for (size_t i = first; i < input.turns.size(); ++i) {
    for (Message& m : input.turns[i]) messages.push_back(std::move(m));
  }
  // Results the request itself carries for calls made in a turn left out: those calls travel
  // too (as one assistant message just before the request), budget or not — an upstream refuses
  // a result without its call.
  std::set<std::string> needed;
  for (const Message& m : req.messages) {
    for (const Block& b : m.content) {
      if (b.kind == BlockKind::tool_result) needed.insert(b.tool_id);
    }
  }
  for (const std::vector<Message>* part : {&messages, &req.messages}) {
    for (const Message& m : *part) {
      for (const Block& b : m.content) {
        if (b.kind == BlockKind::tool_use) needed.erase(b.tool_id);
      }
    }
  }
  if (!needed.empty()) {
    Message calls;
    calls.role = canonical::Role::assistant;
    for (size_t i = 0; i < first; ++i) {
      for (const Message& m : input.turns[i]) {
        for (const Block& b : m.content) {
          if (b.kind == BlockKind::tool_use && needed.contains(b.tool_id)) calls.content.push_back(b);
        }
      }
    }
    if (!calls.content.empty()) {
      used = sat_add(used, estimate_tokens(std::vector<Message>{calls}));
      messages.push_back(std::move(calls));
    }
  }
  r.turns_used = input.turns.size() - first;
  r.turns_evicted = first;
  for (Message& m : req.messages) messages.push_back(std::move(m));
  req.messages = std::move(messages);
  r.context_tokens = used;
  return r;
}

}  // namespace sluice::sessions
