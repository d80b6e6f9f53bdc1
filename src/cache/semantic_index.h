// The semantic tier's nearest-neighbour index (docs/cache.md): the embeddings of cached
// questions in an HNSW graph (hnswlib, from Debian), cosine similarity, bounded in entries,
// entries expiring with the answers they point to. One index per embeddings model (vectors of
// two models are never compared). Thread-safe (one caller at a time; a search takes tens of microseconds).
//
// hnswlib 0.6 cannot reuse the slot of a deleted point, so the graph has room for twice the
// entries it keeps; when three quarters of the slots are used, a background thread builds a
// fresh graph from the live entries and it replaces the old one (searches go on meanwhile).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace hnswlib {
template <typename T> class HierarchicalNSW;
class InnerProductSpace;
}  // namespace hnswlib

namespace sluice::cache {

class SemanticIndex {
 public:
  struct Item {
    std::string bucket;  // the scope and the rest of the question: only equal buckets match
    std::string text;    // the question's text (for the guards)
    std::string key;     // the exact-cache key its answer is stored under
    std::string owner;   // for invalidation
    std::string route;
    int64_t expires_ms = 0;
  };
  struct Match {
    std::string key;
    std::string text;
    float similarity = 0;
  };

  explicit SemanticIndex(size_t max_entries);
  ~SemanticIndex();
  SemanticIndex(const SemanticIndex&) = delete;
  SemanticIndex& operator=(const SemanticIndex&) = delete;

  /// Indexes `vector` (normalised here) for `item`, replacing any entry with the same key; the
  /// oldest entries go when the index is full. A vector of another dimension than the index's
  /// (the embeddings model changed) starts the index over.
  void add(std::vector<float> vector, Item item, int64_t now_ms);
  /// Entries of `bucket` at least `min_similarity` close to `vector`, unexpired, the closest
  /// first (at most `k`).
  std::vector<Match> search(const std::string& bucket, std::vector<float> vector,
                            float min_similarity, size_t k, int64_t now_ms) const;
  /// Removes the entries `pred` selects; returns how many.
  size_t erase_if(const std::function<bool(const Item&)>& pred);
  size_t size() const;
  size_t dimensions() const;
  /// A rebuild is under way (while it runs, additions to a full graph are dropped).
  bool rebuilding() const;

 private:
  using Graph = hnswlib::HierarchicalNSW<float>;
  void remove_locked(uint64_t label);
  void start_rebuild_locked();
  std::unique_ptr<Graph> make_graph(hnswlib::InnerProductSpace* space) const;

  const size_t max_entries_;
  const size_t capacity_;  // graph slots (live + deleted)
  mutable std::mutex mu_;  // one at a time: hnswlib counts its searches in unsynchronised members
  size_t dims_ = 0;
  std::shared_ptr<hnswlib::InnerProductSpace> space_;
  std::unique_ptr<Graph> graph_;
  std::unordered_map<uint64_t, Item> items_;
  std::unordered_map<std::string, uint64_t> by_key_;
  std::deque<uint64_t> order_;  // labels by insertion (some already removed)
  uint64_t next_label_ = 0;
  uint64_t generation_ = 0;  // bumped when the index starts over
  // A rebuild in progress: labels added since its snapshot go into the new graph too.
  bool rebuilding_ = false;
  std::vector<uint64_t> added_since_;
  std::thread rebuilder_;
};

/// Scales `v` to unit length in place (a zero vector stays zero).
void normalise(std::vector<float>& v);

}  // namespace sluice::cache
