// Session memory scoring and context packing (src/sessions/context.h), including a property
// test: whatever the turns and the budget, a packed prompt never exceeds its budget (when the
// new request alone fits), keeps the newest turns contiguous, and never separates a tool call
// from its result.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "sessions/context.h"

namespace sluice::sessions {
namespace {

using canonical::Block;
using canonical::BlockKind;
using canonical::Message;
using canonical::Request;
using canonical::Role;

Message text_message(Role role, std::string text) {
  Message m;
  m.role = role;
  Block b;
  b.text = std::move(text);
  m.content.push_back(std::move(b));
  return m;
}

TEST(SessionScoring, TokenizeLowercasesAndStems) {
  EXPECT_EQ(tokenize("Lives, LIVED; living in Paris!"),
            (std::vector<std::string>{"liv", "liv", "liv", "in", "paris"}));
  EXPECT_EQ(tokenize("cities bus 42 glasses"), (std::vector<std::string>{"city", "bus", "42", "glass"}));
  EXPECT_TRUE(tokenize("  ,;  ").empty());
}

TEST(SessionScoring, RelevanceRanksTheMatchingMemoryFirst) {
  const int64_t now = 1'000'000'000'000;
  std::vector<MemoryDoc> docs = {
      {"name", "The user is called Ada", 0.5, now, {}},
      {"city", "Lives in Lyon", 0.5, now, {}},
      {"pet", "Has a cat named Tom", 0.5, now, {}},
  };
  auto top = score_memories(docs, "where does she live", 2, now, ScoreParams{});
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].index, 1u);
  EXPECT_DOUBLE_EQ(top[0].relevance, 1.0);
  EXPECT_GT(top[0].bm25, 0);
  EXPECT_DOUBLE_EQ(top[1].relevance, 0.0);
  // score = α·relevance + β·recency + γ·weight
  const ScoreParams p;
  EXPECT_NEAR(top[0].score, p.alpha * 1.0 + p.beta * 1.0 + p.gamma * 0.5, 1e-9);
}

TEST(SessionScoring, RecencyAndWeightBreakTies) {
  const int64_t now = 1'000'000'000'000;
  const int64_t week_ms = 7LL * 86400 * 1000;
  std::vector<MemoryDoc> docs = {
      {"a", "same words", 0.5, now - week_ms, {}},  // half as recent
      {"b", "same words", 0.5, now, {}},
      {"c", "same words", 0.9, now - week_ms, {}},
  };
  auto top = score_memories(docs, "", 3, now, ScoreParams{});
  ASSERT_EQ(top.size(), 3u);
  EXPECT_NEAR(top[0].recency + top[1].recency + top[2].recency, 0.5 + 1 + 0.5, 1e-9);
  // c: 0.2·0.5 + 0.3·0.9 = 0.37; b: 0.2 + 0.15 = 0.35; a: 0.1 + 0.15 = 0.25
  EXPECT_EQ(top[0].index, 2u);
  EXPECT_EQ(top[1].index, 1u);
  EXPECT_EQ(top[2].index, 0u);
}

TEST(SessionScoring, TheIndexRanksExactlyAsTheOneOffScorer) {
  std::mt19937 rng(99);
  const char* words[] = {"paris", "lyon", "cat", "dog", "lives", "lived", "job", "the", "is",
                         "sister", "moved", "piano", "Marco's", "42", "coffee"};
  for (int round = 0; round < 50; ++round) {
    std::vector<MemoryDoc> docs;
    const int n = static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) {
      std::string text;
      for (int w = 0; w < static_cast<int>(rng() % 10); ++w) text += std::string(words[rng() % 15]) + " ";
      docs.push_back({"k" + std::to_string(i % 7), text, (rng() % 100) / 100.0,
                      1'000'000'000'000 - static_cast<int64_t>(rng() % 1'000'000'000), {}});
    }
    std::string query;
    for (int w = 0; w < static_cast<int>(rng() % 5); ++w) query += std::string(words[rng() % 15]) + " ";
    const size_t k = rng() % 12;
    auto expected = score_memories(docs, query, k, 1'000'000'000'000, ScoreParams{});
    MemoryIndex index(docs);
    auto got = index.search(query, k, 1'000'000'000'000, ScoreParams{});
    ASSERT_EQ(got.size(), expected.size()) << "round " << round;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].index, expected[i].index) << "round " << round << " rank " << i;
      EXPECT_EQ(got[i].score, expected[i].score) << "round " << round << " rank " << i;
    }
  }
}

TEST(SessionScoring, TheIndexLeavesExpiredMemoriesOut) {
  std::vector<MemoryDoc> docs = {{"a", "lives in paris", 0.5, 0, {}}, {"b", "lives in lyon", 0.5, 0, {}}};
  MemoryIndex index(docs, {1000, 0});
  auto before = index.search("lives", 5, 999, ScoreParams{});
  EXPECT_EQ(before.size(), 2u);
  auto after = index.search("lives", 5, 1000, ScoreParams{});
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].index, 1u);
}

TEST(SessionPacking, KeepsTheNewestTurnsThatFitAndReportsWhatWasLeftOut) {
  Request req;
  req.messages.push_back(text_message(Role::user, "new question"));
  PackInput in;
  for (int i = 0; i < 10; ++i) {
    in.turns.push_back({text_message(Role::user, std::string(400, 'u')),
                        text_message(Role::assistant, std::string(400, 'a'))});
  }
  const int64_t turn_tokens = estimate_tokens(in.turns[0]);
  in.budget = estimate_tokens(req.messages) + 3 * turn_tokens + 5;
  in.memory_budget = 0;
  PackResult r = pack(req, in);
  EXPECT_EQ(r.turns_used, 3u);
  EXPECT_EQ(r.turns_evicted, 7u);
  EXPECT_LE(r.context_tokens, in.budget);
  ASSERT_EQ(req.messages.size(), 7u);
  EXPECT_EQ(req.messages.back().content[0].text, "new question");
}

TEST(SessionPacking, MemoriesGoInTheSystemPromptWithinTheirShare) {
  Request req;
  Block sys;
  sys.text = "You are helpful.";
  req.system.push_back(sys);
  req.messages.push_back(text_message(Role::user, "hi"));
  PackInput in;
  in.budget = 1000;
  in.memory_budget = 25;
  in.memory_lines = {"name: Ada", "city: Lyon", std::string(400, 'x')};
  PackResult r = pack(req, in);
  EXPECT_EQ(r.memories_used, 2u);  // the long one does not fit the memory share
  ASSERT_EQ(req.system.size(), 2u);
  EXPECT_NE(req.system[1].text.find("- name: Ada\n- city: Lyon"), std::string::npos);
}

TEST(SessionPacking, AResultInTheRequestBringsItsEvictedCallAlong) {
  Request req;
  Message result;
  result.role = Role::user;
  Block r;
  r.kind = BlockKind::tool_result;
  r.tool_id = "call_big";
  r.content.push_back(Block{});
  r.content.back().text = "rain";
  result.content.push_back(r);
  req.messages.push_back(result);
  PackInput in;
  Message ask = text_message(Role::user, std::string(2000, 'q'));
  Message call;
  call.role = Role::assistant;
  Block c;
  c.kind = BlockKind::tool_use;
  c.tool_id = "call_big";
  c.tool_name = "weather";
  call.content.push_back(text_message(Role::assistant, "let me look").content[0]);
  call.content.push_back(c);
  in.turns.push_back({ask, call});
  in.budget = estimate_tokens(req.messages) + 100;  // the turn (≈ 520 tokens) does not fit
  PackResult out = pack(req, in);
  EXPECT_EQ(out.turns_evicted, 1u);
  ASSERT_EQ(req.messages.size(), 2u);
  EXPECT_EQ(req.messages[0].role, Role::assistant);
  ASSERT_EQ(req.messages[0].content.size(), 1u);  // only the call, not the turn's text
  EXPECT_EQ(req.messages[0].content[0].tool_id, "call_big");
  EXPECT_EQ(req.messages[1].content[0].kind, BlockKind::tool_result);
}

TEST(SessionPacking, SummariesOfEvictedTurnsGoInTheirReserveNeverOneOfAKeptTurn) {
  Request req;
  req.messages.push_back(text_message(Role::user, "next"));
  PackInput in;
  for (int i = 0; i < 8; ++i) {
    in.turns.push_back({text_message(Role::user, std::string(400, 'u')),
                        text_message(Role::assistant, std::string(400, 'a'))});
    in.turn_numbers.push_back(i + 1);
  }
  in.summaries = {{1, 4, "first three turns"}, {4, 7, "the next three"}, {7, 9, "overlaps kept turns"}};
  const int64_t turn_tokens = estimate_tokens(in.turns[0]);
  in.budget = estimate_tokens(req.messages) + 2 * turn_tokens + 100;
  in.memory_budget = 100;
  PackResult r = pack(req, in);
  EXPECT_EQ(r.turns_used, 2u);
  EXPECT_EQ(r.first_kept_turn, 7);
  EXPECT_EQ(r.summaries_used, 2u);
  ASSERT_EQ(req.system.size(), 1u);
  EXPECT_EQ(req.system[0].text,
            "Summary of earlier turns of this conversation:\n- (turns 1-3) first three turns\n"
            "- (turns 4-6) the next three");
  EXPECT_LE(r.context_tokens, in.budget);
  // A reserve too small for both keeps the newest summary.
  Request again;
  again.messages.push_back(text_message(Role::user, "next"));
  in.memory_budget = 16 + 13;
  PackResult r2 = pack(again, in);
  EXPECT_EQ(r2.summaries_used, 1u);
  ASSERT_EQ(again.system.size(), 1u);
  EXPECT_NE(again.system[0].text.find("the next three"), std::string::npos);
}

TEST(SessionScoring, VectorsAddSimilarityToRelevance) {
  std::vector<MemoryDoc> docs = {{"a", "alpha", 0.5, 0, {1, 0, 0}},
                                 {"b", "beta", 0.5, 0, {0, 1, 0}},
                                 {"c", "gamma", 0.5, 0, {}}};
  EXPECT_DOUBLE_EQ(cosine({1, 0}, {1, 0}), 1.0);
  EXPECT_DOUBLE_EQ(cosine({1, 0}, {0, 1}), 0.0);
  EXPECT_DOUBLE_EQ(cosine({1, 0}, {1, 0, 0}), 0.0);  // dimensions differ
  EXPECT_DOUBLE_EQ(cosine({0, 0}, {1, 0}), 0.0);
  ScoreParams p;
  p.beta = 0;
  p.gamma = 0;
  p.query_vector = {0, 1, 0};
  p.vector_weight = 0.6;
  // No word matches: the vector alone finds "b".
  auto got = score_memories(docs, "zeta", 3, 0, p);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].index, 1u);
  EXPECT_DOUBLE_EQ(got[0].similarity, 1.0);
  EXPECT_DOUBLE_EQ(got[0].relevance, 0.6);
  // A word match counts (1 − w): "alpha" by words (0.4) against "b" by vector (0.6).
  auto mixed = score_memories(docs, "alpha", 3, 0, p);
  EXPECT_EQ(mixed[0].index, 1u);
  EXPECT_DOUBLE_EQ(mixed[1].relevance, 0.4);
  // The index ranks the same.
  MemoryIndex index(docs);
  auto indexed = index.search("alpha", 3, 0, p);
  ASSERT_EQ(indexed.size(), mixed.size());
  for (size_t i = 0; i < mixed.size(); ++i) {
    EXPECT_EQ(indexed[i].index, mixed[i].index);
    EXPECT_EQ(indexed[i].score, mixed[i].score);
  }
}

TEST(SessionScoring, StopwordsDoNotCount) {
  const int64_t now = 1'000'000'000'000;
  std::vector<MemoryDoc> docs = {{"a", "what is it that you do", 0.5, now, {}},
                                 {"b", "Marco's dog is called Rex", 0.5, now, {}}};
  auto top = score_memories(docs, "what is Marco's dog called", 2, now, ScoreParams{});
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].index, 1u);
  EXPECT_DOUBLE_EQ(top[1].bm25, 0.0);  // "what", "is" and "s" are not evidence
}

TEST(SessionPacking, PropertyNeverOverBudgetNeverSplitsToolCalls) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    Request req;
    req.messages.push_back(text_message(Role::user, std::string(rng() % 200, 'q')));
    PackInput in;
    const int turns = static_cast<int>(rng() % 12);
    bool prev_called = false;
    for (int t = 0; t < turns; ++t) {
      std::vector<Message> turn;
      // Some turns open with the result of the previous turn's tool call.
      if (prev_called && rng() % 2 == 0) {
        Message m;
        m.role = Role::user;
        Block res;
        res.kind = BlockKind::tool_result;
        res.tool_id = "call_" + std::to_string(t - 1);
        res.content.push_back(Block{});
        res.content.back().text = std::string(rng() % 300, 'r');
        m.content.push_back(res);
        turn.push_back(m);
      } else {
        turn.push_back(text_message(Role::user, std::string(rng() % 500, 'u')));
      }
      Message a = text_message(Role::assistant, std::string(rng() % 500, 'a'));
      prev_called = rng() % 3 == 0;
      if (prev_called) {
        Block call;
        call.kind = BlockKind::tool_use;
        call.tool_id = "call_" + std::to_string(t);
        call.tool_name = "f";
        a.content.push_back(call);
      }
      turn.push_back(a);
      in.turns.push_back(turn);
    }
    for (int m = 0; m < static_cast<int>(rng() % 6); ++m) {
      in.memory_lines.push_back(std::string(rng() % 120 + 1, 'm'));
    }
    // Turns numbered from 1; contiguous summaries of a prefix of them.
    for (int t = 0; t < turns; ++t) in.turn_numbers.push_back(t + 1);
    for (int64_t from = 1; from <= turns && rng() % 3 != 0;) {
      const int64_t to = std::min<int64_t>(turns + 1, from + 1 + static_cast<int64_t>(rng() % 4));
      in.summaries.push_back({from, to, std::string(rng() % 300 + 1, 's')});
      from = to;
    }
    const int64_t base = estimate_tokens(req.messages);
    in.budget = base + static_cast<int64_t>(rng() % 1500);
    in.memory_budget = static_cast<int64_t>(rng() % 200);
    const size_t n_turns = in.turns.size();
    PackResult r = pack(req, in);
    ASSERT_LE(r.context_tokens, in.budget) << "round " << round;
    // What is sent, estimated independently, fits too.
    ASSERT_LE(estimate_tokens(req.system) + estimate_tokens(req.messages), in.budget + 10)
        << "round " << round;
    ASSERT_EQ(r.turns_used + r.turns_evicted, n_turns);
    if (n_turns > 0) {
      ASSERT_EQ(r.first_kept_turn, static_cast<int64_t>(r.turns_evicted) + 1) << "round " << round;
    }
    // A summary sent covers only turns left out.
    for (const Block& b : req.system) {
      for (size_t at = b.text.find("(turns "); at != std::string::npos; at = b.text.find("(turns ", at + 1)) {
        const int64_t last = std::stoll(b.text.substr(b.text.find('-', at) + 1));
        ASSERT_LT(last, r.first_kept_turn) << "round " << round;
      }
    }
    // Every tool result sent has its call sent before it.
    std::set<std::string> calls;
    for (const Message& m : req.messages) {
      for (const Block& b : m.content) {
        if (b.kind == BlockKind::tool_use) calls.insert(b.tool_id);
        if (b.kind == BlockKind::tool_result) {
          ASSERT_TRUE(calls.contains(b.tool_id)) << "round " << round << ": orphan " << b.tool_id;
        }
      }
    }
  }
}

}  // namespace
}  // namespace sluice::sessions
