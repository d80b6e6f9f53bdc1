// The semantic tier's index: see semantic_index.h.
#include "cache/semantic_index.h"

#include <algorithm>
#include <cmath>
#include <mutex>

// hnswlib's SSE path prefetches one link past the end of a node's list (a 4-byte read beyond
// the allocation, which AddressSanitizer reports); without it the distance loops are plain C++
// that the compiler vectorises itself.
#define NO_MANUAL_VECTORIZATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <hnswlib/hnswlib.h>
#pragma GCC diagnostic pop

namespace sluice::cache {

namespace {
constexpr size_t kM = 16;                // links per node
constexpr size_t kEfConstruction = 100;
constexpr size_t kEfSearch = 64;
}  // namespace

void normalise(std::vector<float>& v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  n = std::sqrt(n);
  if (n <= 0 || !std::isfinite(n)) {
    std::fill(v.begin(), v.end(), 0.0f);
    return;
  }
  for (float& x : v) x = static_cast<float>(x / n);
}

SemanticIndex::SemanticIndex(size_t max_entries)
    : max_entries_(std::max<size_t>(1, max_entries)), capacity_(std::max<size_t>(16, max_entries_ * 2)) {}

SemanticIndex::~SemanticIndex() {
  if (rebuilder_.joinable()) rebuilder_.join();
}

std::unique_ptr<SemanticIndex::Graph> SemanticIndex::make_graph(hnswlib::InnerProductSpace* space) const {
  auto g = std::make_unique<Graph>(space, capacity_, kM, kEfConstruction);
  g->setEf(kEfSearch);
  return g;
}

void SemanticIndex::remove_locked(uint64_t label) {
  auto it = items_.find(label);
  if (it == items_.end()) return;
  by_key_.erase(it->second.key);
  items_.erase(it);
  try {
    graph_->markDelete(label);
  } catch (const std::exception&) {
  }
}

void SemanticIndex::add(std::vector<float> vector, Item item, int64_t now_ms) {
  if (vector.empty()) return;
  normalise(vector);
  std::lock_guard lock(mu_);
  if (vector.size() != dims_) {
    // A new model (or the first vector): start over in its dimension. A rebuild under way is
    // of the old graph; its result is dropped (see start_rebuild_locked).
    items_.clear();
    by_key_.clear();
    order_.clear();
    added_since_.clear();
    dims_ = vector.size();
    ++generation_;
    graph_.reset();
    space_ = std::make_shared<hnswlib::InnerProductSpace>(dims_);
    graph_ = make_graph(space_.get());
  }
  if (auto old = by_key_.find(item.key); old != by_key_.end()) remove_locked(old->second);
  // Expired entries at the front go first, then the oldest while full.
  while (!order_.empty()) {
    const uint64_t front = order_.front();
    auto it = items_.find(front);
    if (it != items_.end() && it->second.expires_ms > now_ms && items_.size() < max_entries_) break;
    order_.pop_front();
    remove_locked(front);
  }
  if (graph_->cur_element_count >= capacity_) return;  // full of deleted slots: a rebuild runs
  const uint64_t label = next_label_++;
  graph_->addPoint(vector.data(), label);
  by_key_[item.key] = label;
  items_.emplace(label, std::move(item));
  order_.push_back(label);
  if (rebuilding_) added_since_.push_back(label);
  if (!rebuilding_ && graph_->cur_element_count >= capacity_ * 3 / 4) start_rebuild_locked();
}

void SemanticIndex::start_rebuild_locked() {
  if (rebuilder_.joinable()) rebuilder_.join();  // the previous one has finished (rebuilding_ is false)
  // The snapshot: live labels and their vectors, copied now (the old graph keeps changing).
  std::vector<std::pair<uint64_t, std::vector<float>>> live;
  live.reserve(items_.size());
  for (const auto& [label, item] : items_) live.emplace_back(label, graph_->getDataByLabel<float>(label));
  rebuilding_ = true;
  added_since_.clear();
  rebuilder_ = std::thread([this, live = std::move(live), generation = generation_, space = space_] {
    // Built outside the lock: searches and additions go on in the old graph.
    std::unique_ptr<Graph> fresh = make_graph(space.get());
    for (const auto& [label, v] : live) fresh->addPoint(v.data(), label);
    std::lock_guard lock(mu_);
    rebuilding_ = false;
    if (generation_ != generation) return;  // the index started over meanwhile
    for (uint64_t label : added_since_) {
      if (items_.count(label)) fresh->addPoint(graph_->getDataByLabel<float>(label).data(), label);
    }
    added_since_.clear();
    for (const auto& [label, v] : live) {
      if (!items_.count(label)) fresh->markDelete(label);
    }
    graph_ = std::move(fresh);
  });
}

std::vector<SemanticIndex::Match> SemanticIndex::search(const std::string& bucket,
                                                        std::vector<float> vector,
                                                        float min_similarity, size_t k,
                                                        int64_t now_ms) const {
  std::vector<Match> out;
  normalise(vector);
  std::lock_guard lock(mu_);
  if (graph_ == nullptr || vector.size() != dims_ || items_.empty() || k == 0) return out;
  // Neighbours of every bucket come back: while the farthest one returned is still close
  // enough (others' entries may hide this bucket's behind it), ask for four times as many.
  size_t want = std::min(items_.size(), std::max<size_t>(k * 4, 16));
  for (;;) {
    auto found = graph_->searchKnn(vector.data(), want);
    out.clear();
    float farthest = 1.0f;
    while (!found.empty()) {
      const auto [distance, label] = found.top();
      found.pop();
      const float similarity = 1.0f - distance;
      farthest = std::min(farthest, similarity);
      auto it = items_.find(label);
      if (it == items_.end()) continue;
      const Item& item = it->second;
      if (item.bucket != bucket || item.expires_ms <= now_ms || similarity < min_similarity) continue;
      out.push_back(Match{item.key, item.text, similarity});
    }
    if (out.size() >= k || farthest < min_similarity || want >= items_.size()) break;
    want = std::min(items_.size(), want * 4);
  }
  std::sort(out.begin(), out.end(), [](const Match& a, const Match& b) { return a.similarity > b.similarity; });
  if (out.size() > k) out.resize(k);
  return out;
}

size_t SemanticIndex::erase_if(const std::function<bool(const Item&)>& pred) {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> gone;
  for (const auto& [label, item] : items_) {
    if (pred(item)) gone.push_back(label);
  }
  for (uint64_t label : gone) remove_locked(label);
  return gone.size();
}

size_t SemanticIndex::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

bool SemanticIndex::rebuilding() const {
  std::lock_guard lock(mu_);
  return rebuilding_;
}

size_t SemanticIndex::dimensions() const {
  std::lock_guard lock(mu_);
  return dims_;
}

}  // namespace sluice::cache
