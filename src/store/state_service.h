// The state store as the request path sees it: `run(fn)` calls fn(store) and resumes the
// calling coroutine on its own executor with the result. A blocking backend (SQLite, Redis)
// runs on the service's own threads, never on a worker; the memory backend runs inline (a
// shard's mutex is held for microseconds). A sweeper thread removes expired state every
// `sweep_every`, off the request path. Owned by the App for the life of a `state:` config;
// its destructor stops the sweeper and waits for the calls in flight.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

#include "store/state_store.h"

namespace sluice::store {

namespace asio = boost::asio;

class StateService {
 public:
  StateService(std::unique_ptr<StateStore> store, std::chrono::milliseconds sweep_every,
               int threads = 2);
  ~StateService();
  StateService(const StateService&) = delete;
  StateService& operator=(const StateService&) = delete;

  StateStore& store() { return *store_; }

  /// fn(StateStore&) → R, off the worker when the backend blocks (fn is copied there). Name
  /// the lambda before the co_await: GCC 12 destroys a lambda temporary that lives across a
  /// co_await twice (ASan: bad free). Not a coroutine itself, so fn is never kept in a frame.
  template <class F>
  auto run(F&& fn) -> asio::awaitable<std::invoke_result_t<F&, StateStore&>> {
    using R = std::invoke_result_t<F&, StateStore&>;
    if (!store_->blocking()) return ready<R>(fn(*store_));
    return asio::async_initiate<const asio::use_awaitable_t<>, void(R)>(
        [this, fn = std::decay_t<F>(std::forward<F>(fn))](auto handler) mutable {
          auto ex = asio::get_associated_executor(handler);
          auto work = asio::make_work_guard(ex);
          asio::post(pool_, [this, fn = std::move(fn), handler = std::move(handler),
                             work = std::move(work)]() mutable {
            R r = fn(*store_);
            auto home = work.get_executor();
            asio::post(home, [handler = std::move(handler), r = std::move(r),
                              work = std::move(work)]() mutable {
              std::move(handler)(std::move(r));
            });
          });
        },
        asio::use_awaitable);
  }

  /// Expired entries removed by the sweeper so far (a metric).
  size_t swept() const { return swept_.load(std::memory_order_relaxed); }

 private:
  template <class R>
  static asio::awaitable<R> ready(R r) {
    co_return std::move(r);
  }

  std::unique_ptr<StateStore> store_;
  asio::thread_pool pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<size_t> swept_{0};
  std::thread sweeper_;
};

}  // namespace sluice::store
